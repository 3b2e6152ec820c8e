"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from core.persistence.db import upgrade
from core.persistence.models import Base


def test_migrations_match_models(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert {
        "workspaces",
        "api_keys",
        "usage_daily",
        "usage_flushes",
        "usage_events",
        "stripe_events",
        "alembic_version",
    } <= set(inspect(db_engine).get_table_names())


def test_upgrade_is_idempotent(db_engine: Engine) -> None:
    upgrade(db_engine)
    with db_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0007"
