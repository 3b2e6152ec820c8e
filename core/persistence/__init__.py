"""Database models, sessions and migrations (SQLAlchemy 2 + Alembic)."""
