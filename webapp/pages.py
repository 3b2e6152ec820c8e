"""The few pages a browser lands on before the dashboard exists.

Stripe Checkout and the Customer Portal send the buyer back here. Plain HTML,
no external assets.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, request

from connectors.salesforce.connect import (
    SalesforceAuthError,
    complete_oauth,
    take_state,
)
from core.errors import ServiceUnavailable
from core.secrets import SecretBox
from webapp.extensions import get_db, tonehub

bp = Blueprint("pages", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Tonehub</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
padding: 0 1rem; color: #1a1a1a">
<h1>{title}</h1><p>{text}</p></body></html>"""


def _page(
    title: str, text: str, status: int = 200, *, link: tuple[str, str] | None = None
) -> Response:
    more = f' <a href="{escape(link[0])}">{escape(link[1])}</a>' if link else ""
    html = _PAGE.format(title=escape(title), text=escape(text) + more)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/salesforce/oauth/callback")
def salesforce_callback() -> Response:
    """Salesforce's OAuth redirect: the state (single use) names the workspace."""
    ext = tonehub()
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if request.args.get("error"):
        return _page(
            "Not connected",
            "Access was not allowed in Salesforce. Start again from Tonehub to retry.",
            400,
        )
    workspace_id = take_state(ext.redis, state)
    if not workspace_id or not code:
        return _page(
            "Connection failed",
            "This link has expired or was already used. Start again from Tonehub.",
            400,
        )
    try:
        conn = complete_oauth(
            ext.settings,
            get_db(),
            SecretBox(ext.settings.secret_key),
            str(workspace_id),
            code,
        )
    except (SalesforceAuthError, ServiceUnavailable) as exc:
        return _page("Connection failed", exc.message, 400)
    return _page(
        "Salesforce connected",
        f"Org {conn.org_id} is connected. Its Cases are scored at the next sync.",
    )


@bp.get("/")
def home() -> Response:
    """The front door: the dashboard."""
    return Response(status=302, headers={"Location": "/dashboard/"})


@bp.get("/billing/complete")
def billing_complete() -> Response:
    """Where Stripe Checkout and the Customer Portal return to."""
    return _page(
        "Thank you",
        "Your subscription is being set up. The new plan applies as soon as Stripe "
        "confirms it, usually within seconds.",
        link=("/dashboard/billing", "Back to Billing"),
    )


@bp.get("/billing/cancelled")
def billing_cancelled() -> Response:
    """Where Stripe Checkout returns to when the buyer gives up."""
    return _page(
        "Checkout cancelled", "Nothing was charged. Your plan has not changed."
    )
