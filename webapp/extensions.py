"""Per-app collaborators, bound in ``init_app`` under ``app.extensions``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, g
from redis import Redis
from slack_bolt import App
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack import service as slack_service
from connectors.slack.app import build_bolt_app
from connectors.slack.installation_store import (
    TonehubInstallationStore,
    TonehubOAuthStateStore,
)
from core.authcache import AuthCache
from core.billing import BillingService, build_billing_service
from core.config import Settings
from core.mail import Mailer, build_mailer
from core.metering import Meter
from core.persistence.db import make_engine, make_session_factory
from core.scoring.service import ScoringService, build_scoring_service
from webapp.metrics import observe_inference
from workers.queues import enqueue_slack_message

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
    slack_app: App | None
    slack_states: TonehubOAuthStateStore
    mailer: Mailer | None = None

    def after_fork(self) -> None:
        """In a process forked after the app was built (gunicorn
        ``--preload``): drop the parent's database connections and load the
        model anew (Redis's pool notices the fork itself)."""
        self.engine.dispose(close=False)
        self.scoring.registry.reload_after_fork()

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
        settings,
        redis=redis,
        scorer=app.config.get("SCORER"),
        observe=observe_inference,
    )
    sessions = make_session_factory(engine)
    auth = AuthCache(redis, sessions)
    states = slack_service.state_store(sessions)
    app.extensions["tonehub"] = Tonehub(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        scoring=scoring,
        meter=Meter(redis, sessions),
        billing=build_billing_service(settings, on_change=auth.forget_workspace),
        auth=auth,
        slack_app=_slack_app(settings, sessions, redis, scoring, states),
        slack_states=states,
        mailer=build_mailer(settings.smtp_url, settings.mail_from),
    )
    app.teardown_appcontext(_close_db)
    logger.info("Tonehub ready; default model %s", scoring.registry.default)


def _slack_app(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis: Redis,
    scoring: ScoringService,
    states: TonehubOAuthStateStore,
) -> App | None:
    """The bolt app, or ``None`` when no Slack app is configured."""
    if not (settings.slack_signing_secret and settings.slack_client_id):
        return None

    def on_message(
        event_id: str, team_id: str, enterprise_id: str | None, event: Mapping[str, Any]
    ) -> None:
        enqueue_slack_message(redis, event_id, team_id, enterprise_id, event)

    return build_bolt_app(
        settings,
        installation_store=TonehubInstallationStore(sessions),
        state_store=states,
        on_message=on_message,
        commands=slack_service.slash_commands(
            settings, sessions=sessions, redis=redis, scoring=scoring
        ),
    )


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
