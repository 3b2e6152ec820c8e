"""``/v1`` usage and billing views (registered on the ``api`` blueprint)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g, request

from core.errors import InvalidRequest
from core.metering.report import report_range, usage_report
from webapp.api.views import AUTH, AUTH_ERRORS, BODY_ERRORS, bp
from webapp.extensions import get_db, tonehub
from webapp.schemas import (
    BillingOut,
    CheckoutIn,
    CheckoutOut,
    PortalOut,
    UsageOut,
    UsageQuery,
)

BILLING_ERRORS = {
    **BODY_ERRORS,
    409: "subscription_exists, no_billing_account",
    502: "billing_error",
    503: "billing_unavailable, billing_not_configured",
}


@bp.get("/usage")
@bp.input(UsageQuery, location="query", arg_name="query")
@bp.output(UsageOut)
@bp.doc(
    summary="This month's quota and daily usage",
    security=AUTH,
    responses={**AUTH_ERRORS, 400: "invalid_request"},
)
def get_usage(query: dict[str, Any]) -> dict[str, Any]:
    """Used / limit / remaining this period, and usage per day, source and label."""
    for name in ("from", "to"):
        if len(request.args.getlist(name)) > 1:
            raise InvalidRequest(f"Give '{name}' once.", field=name)
    ext = tonehub()
    now = datetime.now(UTC)
    first, last = report_range(query.get("from_"), query.get("to"), now=now)
    return usage_report(
        get_db(),
        ext.redis,
        ext.meter,
        workspace_id=g.workspace_id,
        plan=g.plan,
        first=first,
        last=last,
        now=now,
    )


@bp.get("/billing")
@bp.output(BillingOut)
@bp.doc(summary="Plan and subscription state", security=AUTH, responses=AUTH_ERRORS)
def billing_status() -> dict[str, Any]:
    """The plan in force, the subscription, and any failed payment."""
    return tonehub().billing.status(get_db(), g.workspace_id, now=datetime.now(UTC))


@bp.post("/billing/checkout")
@bp.input(CheckoutIn, arg_name="body")
@bp.output(CheckoutOut)
@bp.doc(summary="Start a Stripe Checkout", security=AUTH, responses=BILLING_ERRORS)
def billing_checkout(body: dict[str, Any]) -> dict[str, Any]:
    """A Checkout Session URL for upgrading to ``plus`` or ``pro``."""
    return tonehub().billing.checkout(get_db(), g.workspace_id, body["plan"])


@bp.post("/billing/portal")
@bp.output(PortalOut)
@bp.doc(
    summary="Open the Stripe Customer Portal", security=AUTH, responses=BILLING_ERRORS
)
def billing_portal() -> dict[str, Any]:
    """A Customer Portal URL: change plan, cancel, update the card."""
    return tonehub().billing.portal(get_db(), g.workspace_id)
