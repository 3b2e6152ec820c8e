"""``/v1/connectors``: starting connector installs for the caller's workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g

from connectors.salesforce import connect as sf_connect
from connectors.slack.oauth import start_linked_install
from core.errors import SalesforceNotConfigured, SlackNotConfigured
from core.secrets import SecretBox
from webapp.api.views import AUTH, AUTH_ERRORS, bp
from webapp.extensions import get_db, tonehub
from webapp.schemas import (
    BackfillIn,
    InstallLinkOut,
    JwtConnectIn,
    SalesforceOut,
    SalesforceSettingsIn,
    SyncQueuedOut,
)
from workers.queues import enqueue_salesforce_sync


@bp.post("/connectors/slack/install")
@bp.output(InstallLinkOut)
@bp.doc(
    summary="A link that installs the Slack app for this workspace",
    security=AUTH,
    responses={**AUTH_ERRORS, 503: "slack_not_configured"},
)
def slack_install_link() -> dict[str, Any]:
    """Open the URL in a browser within 10 minutes to add Tonehub to Slack."""
    ext = tonehub()
    if ext.slack_app is None:
        raise SlackNotConfigured("The Slack app is not configured on this deployment.")
    url = start_linked_install(
        ext.slack_states, g.workspace_id, public_url=ext.settings.public_url
    )
    return {"url": url, "expires_in": 600}


SF_ERRORS = {**AUTH_ERRORS, 404: "not_found", 503: "salesforce_not_configured"}


def _salesforce_ready() -> None:
    settings = tonehub().settings
    if not (settings.salesforce_client_id and settings.secret_key):
        raise SalesforceNotConfigured(
            "Salesforce is not configured on this deployment "
            "(TONEHUB_SALESFORCE_CLIENT_ID, _CLIENT_SECRET and TONEHUB_SECRET_KEY)."
        )


@bp.post("/connectors/salesforce/connect")
@bp.output(InstallLinkOut)
@bp.doc(
    summary="Start connecting a Salesforce org (OAuth)",
    security=AUTH,
    responses=SF_ERRORS,
)
def salesforce_connect() -> dict[str, Any]:
    """Open the URL within 10 minutes, as an admin of the org, and allow access."""
    _salesforce_ready()
    ext = tonehub()
    url = sf_connect.start_connect(ext.settings, ext.redis, g.workspace_id)
    return {"url": url, "expires_in": sf_connect.STATE_SECONDS}


@bp.post("/connectors/salesforce/connect-jwt")
@bp.input(JwtConnectIn, arg_name="body")
@bp.output(SalesforceOut)
@bp.doc(
    summary="Connect an org with the JWT bearer flow",
    security=AUTH,
    responses={**SF_ERRORS, 409: "salesforce_auth_revoked"},
)
def salesforce_connect_jwt(body: dict[str, Any]) -> dict[str, Any]:
    """Server-to-server: the connected app's certificate signs for ``username``."""
    _salesforce_ready()
    ext = tonehub()
    box = SecretBox(ext.settings.secret_key)
    db = get_db()
    sf_connect.connect_jwt(ext.settings, db, box, g.workspace_id, body["username"])
    return sf_connect.status(db, g.workspace_id)


@bp.get("/connectors/salesforce")
@bp.output(SalesforceOut)
@bp.doc(
    summary="The connected org: status, last sync, Cases scored, API calls",
    security=AUTH,
    responses=SF_ERRORS,
)
def salesforce_status() -> dict[str, Any]:
    """Status of the workspace's Salesforce connection."""
    return sf_connect.status(get_db(), g.workspace_id)


@bp.patch("/connectors/salesforce")
@bp.input(SalesforceSettingsIn, arg_name="body")
@bp.output(SalesforceOut)
@bp.doc(
    summary="Field names, text fields and sync interval of the org",
    security=AUTH,
    responses={**SF_ERRORS, 400: "invalid_request"},
)
def salesforce_configure(body: dict[str, Any]) -> dict[str, Any]:
    """Map the sentiment fields to other Case fields, or change what is scored."""
    db = get_db()
    sf_connect.configure(
        db,
        g.workspace_id,
        fields=body.get("field_names"),
        text_fields=body.get("text_fields"),
        sync_minutes=body.get("sync_minutes"),
        alert_confidence=body.get("alert_confidence", ...),
    )
    return sf_connect.status(db, g.workspace_id)


@bp.delete("/connectors/salesforce")
@bp.output({}, status_code=204)
@bp.doc(
    summary="Disconnect the org (its tokens are deleted)",
    security=AUTH,
    responses=SF_ERRORS,
)
def salesforce_disconnect() -> tuple[str, int]:
    """Forget the org's tokens and Case scores."""
    sf_connect.disconnect(get_db(), g.workspace_id)
    return "", 204


@bp.post("/connectors/salesforce/sync")
@bp.output(SyncQueuedOut, status_code=202)
@bp.doc(
    summary="Sync now (also clears an error status)", security=AUTH, responses=SF_ERRORS
)
def salesforce_sync_now() -> dict[str, Any]:
    """Queue a sync of the org."""
    db = get_db()
    conn = sf_connect.get_connection(db, g.workspace_id)
    if conn.status == "error":
        conn.status = "connected"
        db.commit()
    queued = enqueue_salesforce_sync(tonehub().redis, conn.id) is not None
    return {"queued": queued}


@bp.post("/connectors/salesforce/backfill")
@bp.input(BackfillIn, arg_name="body")
@bp.output(SyncQueuedOut, status_code=202)
@bp.doc(
    summary="Score the Cases changed in the last N days",
    security=AUTH,
    responses=SF_ERRORS,
)
def salesforce_backfill(body: dict[str, Any]) -> dict[str, Any]:
    """Within the same API budget and quota; unchanged Cases are not rescored."""
    conn_id = sf_connect.backfill(
        get_db(), g.workspace_id, body["days"], now=datetime.now(UTC)
    )
    return {"queued": enqueue_salesforce_sync(tonehub().redis, conn_id) is not None}
