"""Connecting an org: OAuth web-server flow, JWT bearer flow, status, disconnect.

Tokens are encrypted (``core.secrets.SecretBox``) before they reach the
database and never logged.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any
from urllib.parse import urlencode

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.salesforce.client import (
    SalesforceAuthError,
    http_session,
    jwt_assertion,
    token_request,
)
from core.config import Settings
from core.errors import InvalidRequest, NotFound
from core.persistence.models import SalesforceConnection
from core.secrets import SecretBox

logger = logging.getLogger(__name__)


STATE_KEY = "th:sf:state:{state}"
STATE_SECONDS = 600
"""An OAuth state is single use and lives ten minutes."""


def start_connect(settings: Settings, redis: Redis, workspace_id: str) -> str:
    """The authorize URL for a workspace, with a fresh state bound to it."""
    state = secrets.token_urlsafe(24)
    redis.set(STATE_KEY.format(state=state), workspace_id, ex=STATE_SECONDS)
    return authorize_url(settings, state)


def take_state(redis: Redis, state: str) -> str | None:
    """The workspace a state was issued for, once (the state is consumed)."""
    raw = redis.getdel(STATE_KEY.format(state=state)) if state else None
    return raw.decode() if isinstance(raw, bytes) else None


def redirect_uri(settings: Settings) -> str:
    """The OAuth callback registered on the connected app."""
    return f"{settings.public_url.rstrip('/')}/salesforce/oauth/callback"


def authorize_url(settings: Settings, state: str) -> str:
    """Where to send the admin to allow Tonehub into the org."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.salesforce_client_id,
            "redirect_uri": redirect_uri(settings),
            "scope": "api refresh_token",
            "state": state,
        }
    )
    return (
        f"{settings.salesforce_login_url.rstrip('/')}/services/oauth2/authorize?{query}"
    )


def _org_id(body: dict[str, Any]) -> str:
    # "id": "https://login.salesforce.com/id/<org id>/<user id>"
    parts = str(body.get("id", "")).rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def _store(
    session: Session,
    box: SecretBox,
    workspace_id: str,
    body: dict[str, Any],
    *,
    kind: str,
    username: str | None = None,
) -> SalesforceConnection:
    conn = session.scalar(
        select(SalesforceConnection).where(
            SalesforceConnection.workspace_id == workspace_id
        )
    )
    if conn is None:
        conn = SalesforceConnection(workspace_id=workspace_id, settings="{}")
        session.add(conn)
    conn.org_id = _org_id(body)
    conn.instance_url = str(body["instance_url"])
    conn.auth_kind, conn.username = kind, username
    conn.access_token = box.seal(str(body["access_token"]))
    refresh = body.get("refresh_token")
    conn.refresh_token = box.seal(str(refresh)) if refresh else None
    conn.status, conn.last_error = "connected", None
    conn.cases_scored = conn.cases_scored or 0
    conn.api_calls_last_sync = conn.api_calls_last_sync or 0
    conn.api_calls_total = conn.api_calls_total or 0
    session.commit()
    logger.info(
        "Salesforce org %s connected to %s (%s)", conn.org_id, workspace_id, kind
    )
    return conn


def complete_oauth(
    settings: Settings, session: Session, box: SecretBox, workspace_id: str, code: str
) -> SalesforceConnection:
    """Exchange the callback's code for tokens and store the connection."""
    body = token_request(
        settings,
        http_session(settings),
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": settings.salesforce_client_id,
            "client_secret": settings.salesforce_client_secret,
            "redirect_uri": redirect_uri(settings),
        },
        login_url=settings.salesforce_login_url,
    )
    return _store(session, box, workspace_id, body, kind="oauth")


def connect_jwt(
    settings: Settings,
    session: Session,
    box: SecretBox,
    workspace_id: str,
    username: str,
) -> SalesforceConnection:
    """Server-to-server: a JWT bearer assertion for ``username``."""
    login = settings.salesforce_login_url
    body = token_request(
        settings,
        http_session(settings),
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(settings, username, audience=login),
        },
        login_url=login,
    )
    return _store(session, box, workspace_id, body, kind="jwt", username=username)


def get_connection(session: Session, workspace_id: str) -> SalesforceConnection:
    """The workspace's connection or ``NotFound``."""
    conn = session.scalar(
        select(SalesforceConnection).where(
            SalesforceConnection.workspace_id == workspace_id
        )
    )
    if conn is None:
        raise NotFound("No Salesforce org is connected to this workspace.")
    return conn


def status(session: Session, workspace_id: str) -> dict[str, Any]:
    """What the dashboard and ``GET /v1/connectors/salesforce`` show."""
    conn = get_connection(session, workspace_id)
    config = json.loads(conn.settings or "{}")
    return {
        "id": conn.id,
        "org_id": conn.org_id,
        "instance_url": conn.instance_url,
        "auth": conn.auth_kind,
        "status": conn.status,
        "last_error": conn.last_error,
        "last_sync_at": conn.last_sync_at,
        "cases_scored": conn.cases_scored,
        "api_calls_last_sync": conn.api_calls_last_sync,
        "api_calls_total": conn.api_calls_total,
        "org_api_usage": conn.api_usage,
        "watermark": conn.watermark_ts,
        "sync_minutes": config.get("sync_minutes"),
        "fields": config.get("fields", {}),
        "text_fields": config.get("text_fields", ["Subject", "Description"]),
        "alert_confidence": config.get("alert_confidence", 0.9),
    }


FIELD_ROLES = ("label", "score", "confidence", "scored_at", "model")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}(__c)?$")


def configure(
    session: Session,
    workspace_id: str,
    *,
    fields: dict[str, str] | None = None,
    text_fields: list[str] | None = None,
    sync_minutes: int | None = None,
    alert_confidence: float | None | EllipsisType = ...,
) -> None:
    """Change a connection's field names, text fields, sync interval or the
    confidence above which a negative Case raises an alert (``None``: never;
    ``...``: unchanged).

    Raises:
        InvalidRequest: An unknown role or a name that is not a Salesforce
            API name (they end up in SOQL and in write-back payloads).
    """
    conn = get_connection(session, workspace_id)
    config = json.loads(conn.settings or "{}")
    if fields is not None:
        for role, name in fields.items():
            if role not in FIELD_ROLES:
                raise InvalidRequest(
                    f"Unknown field role {role!r}; roles are {', '.join(FIELD_ROLES)}.",
                    field="fields",
                )
            if not _API_NAME.match(name):
                raise InvalidRequest(
                    f"{name!r} is not a field API name.", field="fields"
                )
        config["fields"] = {**config.get("fields", {}), **fields}
    if text_fields is not None:
        if not text_fields or not all(_API_NAME.match(n) for n in text_fields):
            raise InvalidRequest(
                "text_fields must list field API names.", field="text_fields"
            )
        config["text_fields"] = text_fields
    if sync_minutes is not None:
        config["sync_minutes"] = sync_minutes
    if alert_confidence is not ...:
        config["alert_confidence"] = alert_confidence
    conn.settings = json.dumps(config)
    session.commit()


def disconnect(session: Session, workspace_id: str) -> None:
    """Forget the org: tokens and the Cases' scores go."""
    conn = get_connection(session, workspace_id)
    session.delete(conn)
    session.commit()
    logger.info("Salesforce disconnected from %s", workspace_id)


def backfill(session: Session, workspace_id: str, days: int, *, now: datetime) -> str:
    """Move the watermark back ``days`` so the next sync takes those Cases in.

    Unchanged Cases are still not rescored (their text hash is known).
    """
    conn = get_connection(session, workspace_id)
    start = (now - timedelta(days=days)).astimezone(UTC)
    stamp = start.isoformat(timespec="milliseconds")
    if conn.watermark_ts is None or stamp < conn.watermark_ts:
        conn.watermark_ts, conn.watermark_id = stamp, ""
    if conn.status in ("error", "paused_budget", "paused_quota"):
        conn.status = "connected"
    session.commit()
    return conn.id


__all__ = ["SalesforceAuthError"]
