"""Operator commands: ``flask --app wsgi <command>``."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from core import accounts
from core.config import REPO_ROOT
from core.errors import NotFound, Unauthorized
from core.metering import UsageFlusher
from core.persistence.db import upgrade
from core.plans import PlanName
from webapp.extensions import tonehub

DEV_KEY_FILE = REPO_ROOT / "var" / "dev_api_key.json"
"""Where ``dev-setup`` keeps the development key so a restart reuses it."""


def init_app(app: Flask) -> None:
    """Register the commands on ``app``."""
    for command in (
        init_db,
        create_workspace,
        create_key,
        list_keys,
        revoke_key,
        set_plan,
        flush_usage,
        dev_setup,
    ):
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Apply the database migrations."""
    upgrade(tonehub().engine)
    click.echo("Database is up to date.")


@click.command("create-workspace")
@with_appcontext
@click.argument("name")
def create_workspace(name: str) -> None:
    """Create a workspace and print its id."""
    with tonehub().sessions() as session:
        click.echo(accounts.create_workspace(session, name).id)


@click.command("create-key")
@with_appcontext
@click.argument("workspace_id")
@click.option("--name", default="default", show_default=True)
def create_key(workspace_id: str, name: str) -> None:
    """Create an API key; the key is printed once and never again."""
    with tonehub().sessions() as session:
        try:
            issued = accounts.create_api_key(session, workspace_id, name=name)
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Key id: {issued.key.id}")
        click.echo(f"API key: {issued.secret}")


@click.command("list-keys")
@with_appcontext
@click.argument("workspace_id")
def list_keys(workspace_id: str) -> None:
    """List a workspace's keys (prefix, status, times)."""
    with tonehub().sessions() as session:
        for key in accounts.list_api_keys(session, workspace_id):
            state = "revoked" if key.revoked_at else "active"
            used = key.last_used_at.isoformat() if key.last_used_at else "never"
            click.echo(
                f"{key.id}\t{key.prefix}…\t{key.name}\t{state}\tlast used {used}"
            )


@click.command("revoke-key")
@with_appcontext
@click.argument("workspace_id")
@click.argument("key_id")
def revoke_key(workspace_id: str, key_id: str) -> None:
    """Revoke a key."""
    with tonehub().sessions() as session:
        try:
            key = accounts.revoke_api_key(session, workspace_id, key_id)
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
        tonehub().auth.forget_key(key.key_hash)
    click.echo(f"Revoked {key_id}.")


@click.command("set-plan")
@with_appcontext
@click.argument("workspace_id")
@click.argument("plan", type=click.Choice([p.value for p in PlanName]))
def set_plan(workspace_id: str, plan: str) -> None:
    """Set a workspace's plan (operators, support, tests).

    A Stripe subscription's next event overrides it.
    """
    with tonehub().sessions() as session:
        try:
            accounts.set_plan(session, workspace_id, plan)
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
    tonehub().auth.forget_workspace(workspace_id)
    click.echo(f"Workspace {workspace_id} is on {plan}.")


@click.command("flush-usage")
@with_appcontext
def flush_usage() -> None:
    """Move pending usage from Redis to the database now."""
    ext = tonehub()
    flusher = UsageFlusher(ext.redis, ext.sessions, grace=ext.billing_grace)
    report = flusher.flush(now=datetime.now(UTC))
    click.echo(f"Flushed {report.units} texts in {report.batches} batches.")


@click.command("dev-setup")
@with_appcontext
@click.option("--key-file", type=click.Path(path_type=Path), default=DEV_KEY_FILE)
@click.option("--port", default=8000, show_default=True)
def dev_setup(key_file: Path, port: int) -> None:
    """Create (or reuse) the development workspace and key, and print them."""
    with tonehub().sessions() as session:
        secret = _reuse_dev_key(session, key_file)
        if secret is None:
            workspace = accounts.create_workspace(session, "Development")
            secret = accounts.create_api_key(
                session, workspace.id, name="development"
            ).secret
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(
                json.dumps({"workspace_id": workspace.id, "key": secret})
            )
            os.chmod(key_file, 0o600)
    click.echo(f"Development API key: {secret}")
    click.echo("Try it:")
    click.echo(
        f"  curl -s http://127.0.0.1:{port}/v1/sentiment"
        f" -H 'Authorization: Bearer {secret}'"
        " -H 'Content-Type: application/json'"
        ' -d \'{"text": "The support team fixed my issue in minutes, thank you!"}\''
    )


def _reuse_dev_key(session: Session, key_file: Path) -> str | None:
    if not key_file.exists():
        return None
    secret = str(json.loads(key_file.read_text()).get("key", ""))
    try:
        accounts.authenticate(session, secret)
    except Unauthorized:
        return None  # a fresh database or a revoked key: make a new one
    return secret
