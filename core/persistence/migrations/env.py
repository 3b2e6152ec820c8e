"""Alembic environment: runs on the connection handed in by ``db.upgrade``."""

from __future__ import annotations

from alembic import context

from core.persistence.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through core.persistence.db.upgrade()")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
