"""A Redis cache in front of API-key authentication.

Looking a key up in PostgreSQL costs about a millisecond per request; the cache
answers from one Redis ``GET``. An entry holds the key's id, its workspace and
the workspace's billing fields (what ``plan_in_force`` needs), and lives
``AUTH_TTL_SECONDS``. Every miss goes to the database, which also keeps
``last_used_at`` at its one-minute resolution.

Changes take effect at once through ``forget_key`` (revocation) and
``forget_workspace`` (plan or subscription changes); the TTL bounds staleness
for changes made behind the application's back (a hand-edited database).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import KEY_PATTERN, UNAUTHORIZED_MESSAGE, authenticate, hash_key
from core.errors import Unauthorized
from core.persistence.models import Workspace

AUTH_KEY = "th:auth:{key_hash}"
"""A cached key: JSON of ``Principal``."""

WORKSPACE_KEYS = "th:auth:ws:{workspace_id}"
"""Set of the cache entries of one workspace (to forget them together)."""

AUTH_TTL_SECONDS = 60
"""How long an entry is trusted without asking the database."""

_FORGET_WORKSPACE_LUA = """
local members = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(members) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return #members
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its workspace and that workspace's billing state.

    Attributes:
        key_id: The API key's id.
        workspace: A detached ``Workspace`` with the fields plans depend on.
    """

    key_id: str
    workspace: Workspace

    @property
    def workspace_id(self) -> str:
        """The workspace every part of the request is scoped to."""
        return self.workspace.id

    def to_json(self) -> str:
        """Serialise for the cache."""
        w = self.workspace
        return json.dumps(
            {
                "key": self.key_id,
                "ws": w.id,
                "plan": w.plan,
                "cancel": bool(w.cancel_at_period_end),
                "end": _iso(w.current_period_end),
                "failed": _iso(w.payment_failed_at),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Principal:
        """Read a cached entry."""
        d = json.loads(raw)
        workspace = Workspace(
            id=d["ws"],
            name="",
            plan=d["plan"],
            cancel_at_period_end=d["cancel"],
            current_period_end=_dt(d["end"]),
            payment_failed_at=_dt(d["failed"]),
        )
        return cls(key_id=d["key"], workspace=workspace)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class AuthCache:
    """Authenticate API keys, from Redis when it can.

    Args:
        redis: The shared Redis.
        sessions: Database sessions (for misses).
        ttl: Seconds an entry lives.
    """

    def __init__(
        self,
        redis: Redis,
        sessions: sessionmaker[Session],
        *,
        ttl: int = AUTH_TTL_SECONDS,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.ttl = ttl
        self._forget_ws = redis.register_script(_FORGET_WORKSPACE_LUA)

    def authenticate(self, secret: str | None, *, now: datetime) -> Principal:
        """The principal for a key, or ``Unauthorized`` (one answer for all).

        A Redis failure falls back to the database.
        """
        if not secret or not KEY_PATTERN.match(secret):
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        cache_key = AUTH_KEY.format(key_hash=hash_key(secret))
        try:
            raw = cast("bytes | None", self.redis.get(cache_key))
        except RedisError:
            raw = None
        if raw is not None:
            return Principal.from_json(raw)
        with self.sessions() as session:
            key = authenticate(session, secret, now=now)
            principal = Principal(key_id=key.id, workspace=key.workspace)
            entry = principal.to_json()
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(cache_key, entry, ex=self.ttl)
                members = WORKSPACE_KEYS.format(workspace_id=principal.workspace_id)
                pipe.sadd(members, cache_key)
                pipe.expire(members, self.ttl * 2)
                pipe.execute()
        except RedisError:
            pass
        return principal

    def forget_key(self, secret_hash: str) -> None:
        """Drop a key's entry (after revoking it)."""
        self.redis.delete(AUTH_KEY.format(key_hash=secret_hash))

    def forget_workspace(self, workspace_id: str) -> None:
        """Drop every entry of a workspace (after its plan or keys changed)."""
        self._forget_ws(keys=[WORKSPACE_KEYS.format(workspace_id=workspace_id)])
