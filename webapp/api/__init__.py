"""The public REST API under ``/v1``."""

from webapp.api import account as _account  # noqa: F401  (registers its views)
from webapp.api import connectors as _connectors  # noqa: F401
from webapp.api import jobs as _jobs  # noqa: F401
from webapp.api import webhooks as _webhooks  # noqa: F401
from webapp.api.views import bp

__all__ = ["bp"]
