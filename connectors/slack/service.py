"""Wiring of the Slack connector's parts, for the web app and the worker."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack.clients import BotClients
from connectors.slack.commands import SlashCommands
from connectors.slack.installation_store import (
    TonehubInstallationStore,
    TonehubOAuthStateStore,
)
from connectors.slack.processing import SlackDeps
from core.config import Settings
from core.scoring.service import ScoringService


def user_salt(settings: Settings) -> bytes:
    """The salt of hashed user ids: configured, or derived from the secret."""
    if settings.slack_user_salt:
        return settings.slack_user_salt.encode()
    secret = settings.slack_signing_secret.encode()
    return hmac.new(secret, b"tonehub-slack-user-salt", hashlib.sha256).digest()


def slack_deps(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    redis: Redis,
    scoring: ScoringService,
) -> SlackDeps:
    """What the message job needs."""
    store = TonehubInstallationStore(sessions)
    return SlackDeps(
        sessions=sessions,
        redis=redis,
        scoring=scoring,
        store=store,
        client_for=BotClients(settings, store),
        user_salt=user_salt(settings),
        grace=timedelta(days=settings.payment_grace_days),
    )


def slash_commands(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    redis: Redis,
    scoring: ScoringService,
) -> SlashCommands:
    """The ``/sentiment`` handler."""
    return SlashCommands(
        sessions=sessions,
        redis=redis,
        scoring=scoring,
        store=TonehubInstallationStore(sessions),
        grace=timedelta(days=settings.payment_grace_days),
    )


def state_store(sessions: sessionmaker[Session]) -> TonehubOAuthStateStore:
    """The OAuth state store."""
    return TonehubOAuthStateStore(sessions)
