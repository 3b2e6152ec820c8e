"""``POST /webhooks/stripe``: Stripe events, verified on the raw body."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import request

from webapp.body import read_body
from webapp.extensions import get_db, tonehub
from webapp.schemas import StripeWebhookOut

bp = APIBlueprint("webhooks", __name__, url_prefix="/webhooks", tag="Webhooks")


@bp.post("/stripe")
@bp.output(StripeWebhookOut)
@bp.doc(
    summary="Stripe events (signed with Stripe-Signature)",
    responses={
        400: "invalid_signature, invalid_json, invalid_request",
        413: "payload_too_large",
        503: "billing_unavailable, billing_not_configured (Stripe retries)",
    },
)
def stripe_events() -> dict[str, Any]:
    """Verify the signature on the raw body, then apply the event once.

    A bad or stale signature is a 400 with no side effect. A Stripe outage
    while fetching the subscription is a 503, so Stripe delivers again.
    """
    billing = tonehub().billing
    event = billing.gateway.verify_event(
        read_body(), request.headers.get("Stripe-Signature")
    )
    outcome = billing.handle_event(get_db(), event)
    return {"received": True, "outcome": outcome}
