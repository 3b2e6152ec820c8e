"""The self-service dashboard: server-rendered pages, no external assets."""

from webapp.dashboard import webhooks as _webhooks  # noqa: F401  (registers its pages)
from webapp.dashboard.views import bp

__all__ = ["bp"]
