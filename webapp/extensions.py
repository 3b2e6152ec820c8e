"""Per-app collaborators, bound in ``init_app`` under ``app.extensions``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app, g
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.authcache import AuthCache
from core.billing import BillingService, build_billing_service
from core.config import Settings
from core.metering import Meter
from core.persistence.db import make_engine, make_session_factory
from core.scoring.service import ScoringService, build_scoring_service

logger = logging.getLogger(__name__)


@dataclass
class Tonehub:
    """What every request may need: settings, database, Redis, the models."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    scoring: ScoringService
    meter: Meter
    billing: BillingService
    auth: AuthCache

    @property
    def billing_grace(self) -> timedelta:
        """How long a failed payment keeps the paid plan."""
        return self.billing.config.grace


def init_app(app: Flask, settings: Settings) -> None:
    """Create the collaborators once per process and attach them to ``app``."""
    engine = make_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    # SCORER: tests share one loaded model across apps.
    scoring = build_scoring_service(
        settings, redis=redis, scorer=app.config.get("SCORER")
    )
    sessions = make_session_factory(engine)
    auth = AuthCache(redis, sessions)
    app.extensions["tonehub"] = Tonehub(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        scoring=scoring,
        meter=Meter(redis, sessions),
        billing=build_billing_service(settings, on_change=auth.forget_workspace),
        auth=auth,
    )
    app.teardown_appcontext(_close_db)
    logger.info("Tonehub ready; default model %s", scoring.registry.default)


def tonehub() -> Tonehub:
    """The current app's collaborators."""
    ext: Tonehub = current_app.extensions["tonehub"]
    return ext


def get_db() -> Session:
    """The request's database session, opened on first use."""
    if "db" not in g:
        g.db = tonehub().sessions()
    session: Session = g.db
    return session


def _close_db(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
