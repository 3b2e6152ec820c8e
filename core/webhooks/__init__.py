"""Outbound webhooks: events, endpoints, signing, the SSRF guard, delivery."""

from core.webhooks.events import EVENT_TYPES, emit

__all__ = ["EVENT_TYPES", "emit"]
