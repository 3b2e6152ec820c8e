"""The self-service dashboard: server-rendered pages, no external assets."""

from webapp.dashboard.views import bp

__all__ = ["bp"]
