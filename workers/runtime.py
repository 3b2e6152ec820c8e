"""Per-process collaborators of the worker, built once and reused by jobs.

The worker entry point calls ``configure`` before forking, so the model is
loaded once and shared copy-on-write by every job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.metering import Meter
from core.persistence.db import make_engine, make_session_factory
from core.scoring.engine import Scorer
from core.scoring.service import ScoringService, build_scoring_service
from core.secrets import SecretBox


@dataclass
class Runtime:
    """What jobs need: settings, Redis, the database and the models."""

    settings: Settings
    scoring: ScoringService
    redis: Redis
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Database sessions; the engine is made on first use, i.e. after RQ
        forked the work horse, so no connection crosses a fork."""
        if self._sessions is None:
            self._sessions = make_session_factory(
                make_engine(self.settings.database_url)
            )
        return self._sessions

    def close(self) -> None:
        """Release the database connections and Redis (tests, shutdown)."""
        if self._sessions is not None:
            bind = self._sessions.kw.get("bind")
            if bind is not None:
                bind.dispose()
            self._sessions = None
        self.redis.close()

    @property
    def meter(self) -> Meter:
        """Admission and reservations against the shared Redis."""
        return Meter(self.redis, self.sessions)

    @property
    def box(self) -> SecretBox:
        """Opens sealed secrets (webhook signing secrets, tokens)."""
        return SecretBox(self.settings.secret_key)

    @property
    def grace(self) -> timedelta:
        """Payment grace period (decides the plan in force)."""
        return timedelta(days=self.settings.payment_grace_days)


_runtime: Runtime | None = None


def configure(settings: Settings, *, scorer: Scorer | None = None) -> Runtime:
    """Build the process runtime and load the default model (unless given)."""
    global _runtime
    redis = Redis.from_url(settings.redis_url)
    scoring = build_scoring_service(settings, redis=redis, scorer=scorer)
    _runtime = Runtime(settings=settings, scoring=scoring, redis=redis)
    return _runtime


def get() -> Runtime:
    """The process runtime, configured from the environment on first use."""
    return _runtime or configure(Settings.from_env())
