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
from core.scoring.registry import ModelRegistry
from core.scoring.service import ScoringService

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
    preloaded = app.config.get("SCORER")  # tests share one loaded model
    registry = ModelRegistry(
        settings.models_dir,
        settings.default_model,
        threads=settings.ort_threads,
        preloaded={preloaded.model_id: preloaded} if preloaded else None,
    )
    registry.get()  # load the default model now, not on the first request
    redis = Redis.from_url(settings.redis_url)
    app.extensions["tonehub"] = Tonehub(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=redis,
        scoring=ScoringService(registry, redis=redis),
    )
    app.teardown_appcontext(_close_db)
    logger.info("Tonehub ready; default model %s", registry.default)


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
