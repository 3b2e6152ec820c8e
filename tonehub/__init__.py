"""The Tonehub client module: what a customer's code needs, stdlib only.

``tonehub.webhooks.verify`` checks a webhook Tonehub sent. The package has no
dependency on the service (copy the single file if you prefer).
"""

from tonehub.webhooks import WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify"]
