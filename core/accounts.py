"""Workspaces and API keys: creation, lookup by key, revocation.

A key is ``th_live_`` + 32 URL-safe random characters. Only its SHA-256 hash
and a display prefix are stored, so the full key exists once: in the answer to
the call that created it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from core.errors import NotFound, Unauthorized
from core.persistence.models import ApiKey, Workspace, as_utc, utcnow
from core.plans import get_plan

logger = logging.getLogger(__name__)

KEY_PREFIX = "th_live_"
"""Every API key starts with this."""

KEY_PATTERN = re.compile(r"^th_live_[A-Za-z0-9_-]{32,128}$")
"""Shape of a well-formed key; anything else is refused without a lookup."""

DISPLAY_PREFIX_CHARS = 12
"""Characters of the key kept for display (``th_live_AbCd``)."""

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key (no write per call)."""

UNAUTHORIZED_MESSAGE = (
    "A valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'."
)


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """SHA-256 hex digest of a key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_workspace(session: Session, name: str) -> Workspace:
    """Create and commit a workspace.

    Args:
        session: Database session.
        name: Display name.

    Returns:
        The new workspace.
    """
    workspace = Workspace(name=name)
    session.add(workspace)
    session.commit()
    logger.info("Workspace %s created", workspace.id)
    return workspace


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    """Load a workspace or raise ``NotFound``."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"Workspace {workspace_id} not found.")
    return workspace


def set_plan(session: Session, workspace_id: str, plan: str) -> Workspace:
    """Put a workspace on a plan (an operator's decision; Stripe may override).

    The override clears what would end a paid plan early (a cancellation at
    the period's end, a failed payment's grace period); the next event of a
    live Stripe subscription sets the plan again.

    Raises:
        NotFound: No such workspace.
        InvalidRequest: No such plan.
    """
    chosen = get_plan(plan)
    workspace = get_workspace(session, workspace_id)
    workspace.plan = chosen.name.value
    workspace.cancel_at_period_end = False
    workspace.payment_failed_at = None
    session.commit()
    logger.info("Workspace %s set to plan %s", workspace_id, chosen.name.value)
    return workspace


def create_api_key(session: Session, workspace_id: str, *, name: str) -> IssuedKey:
    """Issue a key for a workspace.

    Args:
        session: Database session.
        workspace_id: Owner of the key.
        name: A label for people (``"production"``).

    Returns:
        The stored key and its secret (the only time it is available).

    Raises:
        NotFound: The workspace does not exist.
    """
    get_workspace(session, workspace_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(24)  # 24 bytes -> 32 characters
    key = ApiKey(
        workspace_id=workspace_id,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_CHARS],
        key_hash=hash_key(secret),
    )
    session.add(key)
    session.commit()
    logger.info("API key %s created for workspace %s", key.id, workspace_id)
    return IssuedKey(key=key, secret=secret)


def list_api_keys(session: Session, workspace_id: str) -> list[ApiKey]:
    """Keys of a workspace, oldest first, revoked ones included."""
    stmt = (
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(session.scalars(stmt))


def revoke_api_key(session: Session, workspace_id: str, key_id: str) -> ApiKey:
    """Revoke a key of a workspace (idempotent).

    A caller that serves requests through ``core.authcache.AuthCache`` must
    then call its ``forget_key`` so the revocation applies at once.

    Raises:
        NotFound: No such key in this workspace.
    """
    key = session.get(ApiKey, key_id)
    if key is None or key.workspace_id != workspace_id:
        raise NotFound(f"API key {key_id} not found.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
        logger.info("API key %s revoked", key_id)
    return key


def authenticate(
    session: Session, secret: str | None, *, now: datetime | None = None
) -> ApiKey:
    """Find the live key for a secret.

    Every failure raises the same ``Unauthorized`` so a caller learns nothing
    about which check failed.

    Args:
        session: Database session.
        secret: The key as sent by the client, or ``None``.
        now: Current time (injected by tests).

    Returns:
        The key, its workspace loaded; ``workspace_id`` scopes everything
        the request does.

    Raises:
        Unauthorized: Missing, malformed, unknown or revoked key.
    """
    if not secret or not KEY_PATTERN.match(secret):
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    key = session.scalar(
        select(ApiKey)
        .options(joinedload(ApiKey.workspace))
        .where(ApiKey.key_hash == hash_key(secret))
    )
    if key is None or key.revoked_at is not None:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    now = now or utcnow()
    last = as_utc(key.last_used_at)
    if last is None or now - last >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.commit()
    return key
