"""Webhook endpoints of a workspace: create, change, rotate, delete.

The signing secret is shown once, when created or rotated, and kept sealed
with ``TONEHUB_SECRET_KEY``. After a rotation the previous secret keeps
signing (next to the new one) for ``ROTATION_WINDOW``, so a receiver can
switch without dropping a message.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound, UnknownEventType
from core.persistence.models import WebhookDelivery, WebhookEndpoint, as_utc
from core.secrets import SecretBox
from core.webhooks.events import EVENT_TYPES
from core.webhooks.guard import allowed, check_literal
from core.webhooks.signing import new_secret

ROTATION_WINDOW = timedelta(hours=24)
"""How long the previous secret still signs after a rotation."""

MAX_ENDPOINTS = 20
"""Endpoints one workspace may have."""

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class EndpointChange:
    """Fields a create or update sets; ``None`` leaves a field as it is."""

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


def check_url(url: str, allow_hosts: Collection[str]) -> str:
    """Validate a webhook URL.

    https is required, except for allowlisted hosts (local receivers); no
    credentials in the URL; a host that is a non-public IP literal is refused
    now (names are checked after resolution on every attempt).

    Raises:
        InvalidRequest: Not a usable URL.
        WebhookUrlForbidden: A non-public IP literal.
    """
    url = url.strip()
    if (
        not url
        or len(url) > MAX_URL_LENGTH
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        raise InvalidRequest("'url' must be an absolute URL.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
        if not url.isascii():  # an IRI: IDNA host, percent-encoded rest
            url = _ascii_url(parts.scheme, parts.hostname or "", port, parts)
            if len(url) > MAX_URL_LENGTH:
                raise ValueError("too long once encoded")
            parts = urlsplit(url)
    except (ValueError, UnicodeError) as exc:
        raise InvalidRequest("'url' is not a valid URL.", field="url") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidRequest("'url' must be an absolute https URL.", field="url")
    if parts.username or parts.password:
        raise InvalidRequest("'url' must not carry credentials.", field="url")
    if parts.scheme == "http" and not allowed(host, allow_hosts):
        raise InvalidRequest(
            "'url' must use https (plain http only for allowlisted hosts).",
            field="url",
        )
    if port == 0:
        raise InvalidRequest("'url' has no usable port.", field="url")
    check_literal(host, allow_hosts)
    return url


def _ascii_url(scheme: str, host: str, port: int | None, parts: SplitResult) -> str:
    """The URL with its host IDNA-encoded and the rest percent-encoded."""
    netloc = host.encode("idna").decode("ascii")
    if ":" in host:  # an IPv6 literal
        netloc = f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    return urlunsplit(
        (
            scheme,
            netloc,
            quote(parts.path, safe="/%:@!$&'()*+,;=-._~"),
            quote(parts.query, safe="=&%:@!$'()*+,;/?-._~"),
            quote(parts.fragment, safe="=&%:@!$'()*+,;/?-._~"),
        )
    )


def check_description(text: str) -> str:
    """A description: trimmed, at most 500 characters, no control characters.

    Raises:
        InvalidRequest: It holds a control character.
    """
    text = text.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidRequest(
            "'description' must not hold control characters.", field="description"
        )
    return text[:500]


def check_event_types(types: Sequence[str]) -> list[str]:
    """Validate an event type filter (empty means every type).

    Raises:
        UnknownEventType: A type Tonehub does not send.
    """
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise UnknownEventType(
            f"Unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}.",
            field="event_types",
        )
    return sorted(set(types))


def get_endpoint(
    session: Session, workspace_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """One endpoint of the workspace.

    Raises:
        NotFound: No such endpoint in this workspace.
    """
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.workspace_id != workspace_id:
        raise NotFound(f"No webhook endpoint {endpoint_id!r} in this workspace.")
    return endpoint


def list_endpoints(session: Session, workspace_id: str) -> list[WebhookEndpoint]:
    """The workspace's endpoints, oldest first."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == workspace_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def create_endpoint(
    session: Session,
    box: SecretBox,
    workspace_id: str,
    change: EndpointChange,
    *,
    allow_hosts: Collection[str],
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its secret (shown this once).

    Raises:
        InvalidRequest: A bad URL or too many endpoints.
    """
    if change.url is None:
        raise InvalidRequest("'url' is required.", field="url")
    count = session.scalar(
        select(func.count()).where(WebhookEndpoint.workspace_id == workspace_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise InvalidRequest(
            f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints."
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        workspace_id=workspace_id,
        url=check_url(change.url, allow_hosts),
        event_types=json.dumps(check_event_types(change.event_types or [])),
        description=check_description(change.description or ""),
        enabled=True if change.enabled is None else change.enabled,
        secret=box.seal(secret),
        created_at=now or datetime.now(UTC),
    )
    session.add(endpoint)
    session.commit()
    return endpoint, secret


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    change: EndpointChange,
    *,
    allow_hosts: Collection[str],
) -> WebhookEndpoint:
    """Change an endpoint. Enabling it again clears why it was disabled."""
    if change.url is not None:
        endpoint.url = check_url(change.url, allow_hosts)
    if change.event_types is not None:
        endpoint.event_types = json.dumps(check_event_types(change.event_types))
    if change.description is not None:
        endpoint.description = check_description(change.description)
    if change.enabled is not None:
        if change.enabled and not endpoint.enabled:
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.failing_since = None
        endpoint.enabled = change.enabled
    session.commit()
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint, its deliveries and their log."""
    session.delete(endpoint)
    session.commit()


def rotate_secret(
    session: Session,
    box: SecretBox,
    endpoint: WebhookEndpoint,
    *,
    now: datetime | None = None,
) -> str:
    """A new secret; the old one signs too until ``ROTATION_WINDOW`` ends."""
    now = now or datetime.now(UTC)
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_WINDOW
    endpoint.secret = box.seal(secret)
    session.commit()
    return secret


def signing_secrets(
    box: SecretBox, endpoint: WebhookEndpoint, *, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, then the previous one."""
    out = [box.open(endpoint.secret)]
    until = as_utc(endpoint.previous_secret_until)
    if endpoint.previous_secret and until is not None and now < until:
        out.append(box.open(endpoint.previous_secret))
    return out


def disable_endpoint(
    session: Session, endpoint: WebhookEndpoint, reason: str, *, now: datetime
) -> None:
    """Stop delivering to an endpoint (its pending deliveries wait)."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:255]
    endpoint.disabled_at = now


def describe_endpoint(
    endpoint: WebhookEndpoint, *, now: datetime | None = None
) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    now = now or datetime.now(UTC)
    until = as_utc(endpoint.previous_secret_until)
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": json.loads(endpoint.event_types or "[]"),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": as_utc(endpoint.disabled_at),
        "failing_since": as_utc(endpoint.failing_since),
        "previous_secret_expires_at": until if until and until > now else None,
        "created_at": as_utc(endpoint.created_at),
    }


def pending_count(session: Session, endpoint_id: str) -> int:
    """Deliveries of an endpoint still waiting to succeed."""
    return int(
        session.scalar(
            select(func.count()).where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == "pending",
            )
        )
        or 0
    )


def wake_pending(session: Session, endpoint_id: str, *, now: datetime) -> None:
    """Make an endpoint's pending deliveries due now (after re-enabling it)."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == "pending",
        )
        .values(next_attempt_at=now)
    )
    session.commit()
