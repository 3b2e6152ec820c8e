"""The only module that imports ``stripe``: Checkout, Portal, subscriptions,
webhook signatures.

Stripe's errors are mapped to Tonehub errors here and nowhere else. The base
URL is injected (``Settings.stripe_api_base``) so tests and local demos point
the real client library at the loopback fake in ``tests/fakes/stripe.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import stripe

from core.errors import (
    BillingError,
    BillingNotConfigured,
    BillingUnavailable,
    InvalidJson,
    InvalidSignature,
)

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE = 300
"""Seconds a webhook signature stays valid (Stripe's default)."""

NETWORK_RETRIES = 2
"""The client retries connection errors, 409 and 429 with backoff."""

T = TypeVar("T")


def _is_event(event: object) -> bool:
    if not isinstance(event, Mapping):
        return False
    ident, kind, data = event.get("id"), event.get("type"), event.get("data")
    for text, longest in ((ident, 255), (kind, 100)):
        if not isinstance(text, str) or not 0 < len(text) <= longest:
            return False
        if not text.isprintable() or not text.isascii():
            return False
    return isinstance(data, Mapping) and isinstance(data.get("object"), Mapping)


class StripeGateway:
    """Stripe calls Tonehub makes, on one ``StripeClient``.

    Args:
        secret_key: ``sk_...``; empty means billing is not configured.
        webhook_secret: ``whsec_...`` of the webhook endpoint.
        api_base: Stripe's API address (a fake's in tests).
    """

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str,
        api_base: str = "https://api.stripe.com",
    ) -> None:
        self.configured = bool(secret_key)
        self.webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key or "sk_unconfigured",
            base_addresses={"api": api_base},
            max_network_retries=NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=20),
        )

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        if not self.configured:
            raise BillingNotConfigured(
                "Billing is not configured on this deployment "
                "(TONEHUB_STRIPE_SECRET_KEY and the price ids)."
            )
        try:
            return fn()
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            logger.warning("Stripe %s unreachable or rate limited: %s", what, exc)
            raise BillingUnavailable(
                "The payment provider is not reachable right now; try again."
            ) from exc
        except stripe.StripeError as exc:
            status = exc.http_status or 0
            logger.error("Stripe %s failed (%s): %s", what, status, exc.user_message)
            if status >= 500:
                raise BillingUnavailable(
                    "The payment provider failed; try again in a minute."
                ) from exc
            raise BillingError(
                "The payment provider refused the request; contact support."
            ) from exc

    def create_customer(self, workspace_id: str, name: str) -> str:
        """Create the workspace's Stripe customer (once: idempotency key)."""
        customer = self._call(
            "customer create",
            lambda: self._client.v1.customers.create(
                params={"name": name, "metadata": {"workspace_id": workspace_id}},
                options={"idempotency_key": f"tonehub-customer-{workspace_id}"},
            ),
        )
        return str(customer.id)

    def create_checkout_session(
        self,
        *,
        customer: str,
        price: str,
        workspace_id: str,
        success_url: str,
        cancel_url: str,
    ) -> tuple[str, str]:
        """A subscription Checkout Session; returns ``(id, url)``."""
        session = self._call(
            "checkout session create",
            lambda: self._client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": workspace_id,
                    "line_items": [{"price": price, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "metadata": {"workspace_id": workspace_id},
                    "subscription_data": {"metadata": {"workspace_id": workspace_id}},
                }
            ),
        )
        return str(session.id), str(session.url)

    def create_portal_session(self, *, customer: str, return_url: str) -> str:
        """A Customer Portal session URL."""
        portal = self._call(
            "portal session create",
            lambda: self._client.v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            ),
        )
        return str(portal.url)

    def list_subscriptions(self, customer: str) -> list[dict[str, Any]]:
        """Every subscription of a customer, cancelled ones included."""

        def fetch() -> list[dict[str, Any]]:
            page = self._client.v1.subscriptions.list(
                params={"customer": customer, "status": "all", "limit": 100}
            )
            return [sub.to_dict() for sub in page.auto_paging_iter()]

        return self._call("subscription list", fetch)

    def expire_checkout_session(self, session_id: str) -> bool:
        """Expire an open Checkout Session; ``False`` if it was no longer open."""
        try:
            self._call(
                "checkout session expire",
                lambda: self._client.v1.checkout.sessions.expire(session_id),
            )
        except BillingError:
            return False
        return True

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """Check ``Stripe-Signature`` on the raw body and parse the event.

        Raises:
            BillingNotConfigured: No webhook secret is set.
            InvalidSignature: Missing, malformed, wrong or older than 300 s.
            InvalidJson: Signed, but not a JSON object.
        """
        if not self.webhook_secret:
            raise BillingNotConfigured("No Stripe webhook secret is configured.")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self.webhook_secret, SIGNATURE_TOLERANCE
            )
        except (
            stripe.SignatureVerificationError,
            UnicodeDecodeError,
            TypeError,  # a non-ASCII signature in hmac.compare_digest
            ValueError,
        ) as exc:
            raise InvalidSignature(
                "The Stripe-Signature header does not verify for this body."
            ) from exc
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise InvalidJson("The event body is not JSON.") from exc
        if not _is_event(event):
            raise InvalidJson(
                "Not a Stripe event: it needs a string 'id' and 'type' and a "
                "'data.object' object."
            )
        return dict(event)
