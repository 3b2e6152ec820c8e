"""Dashboard pages for outbound webhooks: the same operations as ``/v1/webhooks``.

Owner-only, like API keys: an endpoint's secret signs what Tonehub sends, so
managing endpoints is managing credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from core.errors import NotFound, TonehubError
from core.persistence.models import WebhookEndpoint
from core.secrets import SecretBox
from core.webhooks import delivery, endpoints
from core.webhooks.events import EVENT_TYPES
from webapp.dashboard.views import bp, owner_required, people_message
from webapp.extensions import get_db, tonehub
from workers.queues import enqueue_webhook_attempt, enqueue_webhook_dispatch

ATTEMPTS_SHOWN = 50
"""Newest delivery attempts listed on an endpoint's page."""


def _box() -> SecretBox:
    return SecretBox(tonehub().settings.secret_key)


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    """An endpoint of the current workspace, else 404 (never another's)."""
    try:
        return endpoints.get_endpoint(get_db(), g.workspace.id, endpoint_id)
    except NotFound:
        abort(404)


def _form_change() -> endpoints.EndpointChange:
    return endpoints.EndpointChange(
        url=request.form.get("url", ""),
        event_types=request.form.getlist("event_types"),
        description=request.form.get("description", "")[:500],
        enabled=request.form.get("enabled") == "on",
    )


@bp.context_processor
def _webhook_banner() -> dict[str, Any]:
    return {"tonehub_webhook_banner": disabled_endpoints}


def disabled_endpoints() -> int:
    """How many of the workspace's endpoints Tonehub disabled (for the banner)."""
    ws = g.get("workspace")
    if ws is None:
        return 0
    count = get_db().scalar(
        select(func.count()).where(
            WebhookEndpoint.workspace_id == ws.id,
            WebhookEndpoint.enabled.is_(False),
            WebhookEndpoint.disabled_reason.is_not(None),
        )
    )
    return int(count or 0)


@bp.get("/webhooks")
@owner_required
def webhooks() -> str:
    """The workspace's endpoints, the form to add one, a new secret once."""
    found = endpoints.list_endpoints(get_db(), g.workspace.id)
    return render_template(
        "dashboard/webhooks.html",
        endpoints=[endpoints.describe_endpoint(e) for e in found],
        event_types=EVENT_TYPES,
        new_secret=session.pop("new_webhook_secret", None),
    )


@bp.post("/webhooks")
@owner_required
def create_webhook() -> Any:
    """Add an endpoint; its secret is shown by the next page, once."""
    change = _form_change()
    try:
        endpoint, secret = endpoints.create_endpoint(
            get_db(),
            _box(),
            g.workspace.id,
            endpoints.EndpointChange(
                url=change.url,
                event_types=change.event_types,
                description=change.description,
                enabled=True,
            ),
            allow_hosts=tonehub().settings.webhook_allow_list,
        )
    except TonehubError as exc:
        flash(people_message(exc))
        return redirect(url_for("dashboard.webhooks"), code=303)
    session["new_webhook_secret"] = secret
    return redirect(url_for("dashboard.webhook", endpoint_id=endpoint.id), code=303)


@bp.get("/webhooks/<endpoint_id>")
@owner_required
def webhook(endpoint_id: str) -> str:
    """One endpoint: edit, rotate, delete, and its delivery log."""
    endpoint = _endpoint(endpoint_id)
    db = get_db()
    return render_template(
        "dashboard/webhook.html",
        endpoint=endpoints.describe_endpoint(endpoint),
        event_types=EVENT_TYPES,
        attempts=delivery.attempt_log(db, endpoint.id, limit=ATTEMPTS_SHOWN),
        pending=endpoints.pending_count(db, endpoint.id),
        new_secret=session.pop("new_webhook_secret", None),
    )


@bp.post("/webhooks/<endpoint_id>")
@owner_required
def update_webhook(endpoint_id: str) -> Any:
    """URL, event types, description, enabled."""
    db = get_db()
    endpoint = _endpoint(endpoint_id)
    was_enabled = endpoint.enabled
    try:
        endpoints.update_endpoint(
            db,
            endpoint,
            _form_change(),
            allow_hosts=tonehub().settings.webhook_allow_list,
        )
    except TonehubError as exc:
        db.rollback()
        flash(people_message(exc))
    else:
        if endpoint.enabled and not was_enabled:
            endpoints.wake_pending(db, endpoint.id, now=datetime.now(UTC))
            enqueue_webhook_dispatch(tonehub().redis)
        flash("Endpoint saved.")
    return redirect(url_for("dashboard.webhook", endpoint_id=endpoint_id), code=303)


@bp.post("/webhooks/<endpoint_id>/rotate")
@owner_required
def rotate_webhook(endpoint_id: str) -> Any:
    """A new secret, shown once; the old one keeps signing for 24 hours."""
    secret = endpoints.rotate_secret(get_db(), _box(), _endpoint(endpoint_id))
    session["new_webhook_secret"] = secret
    return redirect(url_for("dashboard.webhook", endpoint_id=endpoint_id), code=303)


@bp.route("/webhooks/<endpoint_id>/delete", methods=["GET", "POST"])
@owner_required
def delete_webhook(endpoint_id: str) -> Any:
    """Confirm, then delete the endpoint with its pending deliveries and log."""
    endpoint = _endpoint(endpoint_id)
    if request.method == "GET":
        return render_template("dashboard/webhook_delete.html", endpoint=endpoint)
    endpoints.delete_endpoint(get_db(), endpoint)
    flash("Endpoint deleted.")
    return redirect(url_for("dashboard.webhooks"), code=303)


@bp.post("/webhooks/<endpoint_id>/events/<event_id>/redeliver")
@owner_required
def redeliver_webhook(endpoint_id: str, event_id: str) -> Any:
    """Send one event again now (same webhook-id)."""
    endpoint = _endpoint(endpoint_id)
    try:
        sent = delivery.redeliver(get_db(), endpoint, event_id, now=datetime.now(UTC))
    except NotFound:
        abort(404)
    enqueue_webhook_attempt(tonehub().redis, sent.id, manual=True)
    flash(f"Event {event_id} queued for redelivery.")
    return redirect(url_for("dashboard.webhook", endpoint_id=endpoint_id), code=303)
