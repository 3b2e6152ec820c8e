"""Workspaces and API keys on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import accounts
from core.errors import NotFound, Unauthorized
from core.persistence.models import ApiKey, as_utc, utcnow


def test_key_format_and_storage(session: Session) -> None:
    ws = accounts.create_workspace(session, "Acme")
    issued = accounts.create_api_key(session, ws.id, name="prod")
    assert accounts.KEY_PATTERN.match(issued.secret)
    assert len(issued.secret) - len("th_live_") >= 32
    stored = session.scalars(select(ApiKey)).one()
    # Only a hash and a display prefix are kept.
    assert stored.key_hash == accounts.hash_key(issued.secret)
    assert issued.secret not in (stored.key_hash, stored.prefix, stored.name)
    assert issued.secret.startswith(stored.prefix) and len(stored.prefix) == 12


def test_authenticate_and_revoke(session: Session) -> None:
    ws = accounts.create_workspace(session, "Acme")
    issued = accounts.create_api_key(session, ws.id, name="prod")
    assert accounts.authenticate(session, issued.secret).workspace_id == ws.id
    accounts.revoke_api_key(session, ws.id, issued.key.id)
    with pytest.raises(Unauthorized) as revoked:
        accounts.authenticate(session, issued.secret)
    with pytest.raises(Unauthorized) as unknown:
        accounts.authenticate(session, "th_live_" + "x" * 32)
    with pytest.raises(Unauthorized) as malformed:
        accounts.authenticate(session, "not-a-key")
    with pytest.raises(Unauthorized) as missing:
        accounts.authenticate(session, None)
    # Same message whatever failed: no hint for an attacker.
    assert len({e.value.message for e in (revoked, unknown, malformed, missing)}) == 1


def test_keys_are_unique_per_issue(session: Session) -> None:
    ws = accounts.create_workspace(session, "Acme")
    secrets = {
        accounts.create_api_key(session, ws.id, name=str(i)).secret for i in range(5)
    }
    assert len(secrets) == 5
    assert [k.name for k in accounts.list_api_keys(session, ws.id)] == list("01234")


def test_workspaces_cannot_touch_each_others_keys(session: Session) -> None:
    a = accounts.create_workspace(session, "A")
    b = accounts.create_workspace(session, "B")
    key_a = accounts.create_api_key(session, a.id, name="a").key
    with pytest.raises(NotFound):
        accounts.revoke_api_key(session, b.id, key_a.id)
    assert accounts.list_api_keys(session, b.id) == []
    assert accounts.list_api_keys(session, a.id)[0].revoked_at is None


def test_create_key_for_missing_workspace(session: Session) -> None:
    with pytest.raises(NotFound):
        accounts.create_api_key(session, "ws_missing", name="x")


def test_last_used_is_written_at_most_once_a_minute(session: Session) -> None:
    ws = accounts.create_workspace(session, "Acme")
    issued = accounts.create_api_key(session, ws.id, name="prod")
    t0 = utcnow()
    accounts.authenticate(session, issued.secret, now=t0)
    accounts.authenticate(session, issued.secret, now=t0 + timedelta(seconds=30))
    session.expire_all()
    assert as_utc(session.get(ApiKey, issued.key.id).last_used_at) == t0
    later = t0 + timedelta(minutes=2)
    accounts.authenticate(session, issued.secret, now=later)
    session.expire_all()
    assert as_utc(session.get(ApiKey, issued.key.id).last_used_at) == later
