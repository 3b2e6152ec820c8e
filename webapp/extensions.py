"""Per-app collaborators, bound in ``init_app`` under ``app.extensions``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, current_app, g
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
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


def init_app(app: Flask, settings: Settings) -> None:
    """Create the collaborators once per process and attach them to ``app``."""
    engine = make_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    # SCORER: tests share one loaded model across apps.
    scoring = build_scoring_service(
        settings, redis=redis, scorer=app.config.get("SCORER")
    )
    app.extensions["tonehub"] = Tonehub(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=redis,
        scoring=scoring,
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
