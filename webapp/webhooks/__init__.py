"""Inbound webhooks: ``/webhooks/stripe`` (Slack events join in a later issue)."""

from webapp.webhooks.stripe import bp

__all__ = ["bp"]
