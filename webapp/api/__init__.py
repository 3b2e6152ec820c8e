"""The public REST API under ``/v1``."""

from webapp.api.views import bp

__all__ = ["bp"]
