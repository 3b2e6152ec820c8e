"""slack_sdk's ``InstallationStore`` and ``OAuthStateStore`` over our database.

Installations live in ``slack_installations`` (one row per team, or per org
for an org-wide Enterprise Grid install), so every web process and worker
shares them and they survive restarts. Each row names the Tonehub workspace the
team meters to. OAuth states are single use and expire after ten minutes; a
state may carry the Tonehub workspace that started the install.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import create_workspace
from core.persistence.models import SlackInstallation, SlackOAuthState, utcnow
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
"""How long an OAuth state (and an install link) stays valid."""


def _encode(installation: Installation) -> str:
    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return json.dumps({k: plain(v) for k, v in installation.to_dict().items()})


class TonehubInstallationStore(InstallationStore):
    """Installations over ``slack_installations``.

    Args:
        sessions: Database sessions.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @property
    def logger(self) -> logging.Logger:
        return logger

    def save(self, installation: Installation) -> None:
        """Store an installation (bolt calls this, also after token rotation)."""
        self.save_for(installation, workspace_id=None)

    def save_for(self, installation: Installation, *, workspace_id: str | None) -> str:
        """Store an installation linked to a Tonehub workspace.

        Args:
            installation: What the OAuth exchange returned.
            workspace_id: The workspace that started the install; ``None``
                keeps the team's existing link or creates a basic workspace.

        Returns:
            The linked workspace's id.
        """
        ent, team = _keys(
            installation.enterprise_id,
            installation.team_id,
            installation.is_enterprise_install,
        )
        with self.sessions() as session:
            row = session.scalar(
                select(SlackInstallation).where(
                    SlackInstallation.enterprise_key == ent,
                    SlackInstallation.team_key == team,
                )
            )
            if row is None:
                if workspace_id is None:
                    name = installation.team_name or installation.enterprise_name
                    workspace_id = create_workspace(session, f"Slack: {name}").id
                row = SlackInstallation(
                    enterprise_key=ent, team_key=team, workspace_id=workspace_id
                )
                session.add(row)
            elif workspace_id is not None:
                row.workspace_id = workspace_id
            row.is_enterprise_install = bool(installation.is_enterprise_install)
            row.data = _encode(installation)
            row.bot_token = installation.bot_token
            row.installed_at = utcnow()
            session.commit()
            logger.info(
                "Slack team %s/%s installed for workspace %s",
                ent,
                team,
                row.workspace_id,
            )
            return row.workspace_id

    def save_bot(self, bot: Bot) -> None:
        """Refreshed bot tokens (token rotation) into the installation."""
        ent, team = _keys(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        with self.sessions() as session:
            row = self._row(session, ent, team)
            if row is None:
                return
            data = json.loads(row.data)
            data.update(
                bot_token=bot.bot_token,
                bot_refresh_token=bot.bot_refresh_token,
                bot_token_expires_at=bot.bot_token_expires_at,
            )
            row.data = json.dumps(data)
            row.bot_token = bot.bot_token
            session.commit()

    def _row(self, session: Session, ent: str, team: str) -> SlackInstallation | None:
        row = session.scalar(
            select(SlackInstallation).where(
                SlackInstallation.enterprise_key == ent,
                SlackInstallation.team_key == team,
            )
        )
        if row is None and ent:  # a team inside an org-wide install
            row = session.scalar(
                select(SlackInstallation).where(
                    SlackInstallation.enterprise_key == ent,
                    SlackInstallation.team_key == "",
                )
            )
        return row

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        ent, team = _keys(enterprise_id, team_id, is_enterprise_install)
        with self.sessions() as session:
            row = self._row(session, ent, team)
            if row is None or row.bot_token is None:
                return None  # never installed, or uninstalled
            data = json.loads(row.data)
        if user_id is not None and data.get("user_id") != user_id:
            return None
        return Installation(**data)

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = self.find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if installation is None or installation.bot_token is None:
            return None
        return installation.to_bot()

    def workspace_for(
        self, enterprise_id: str | None, team_id: str | None
    ) -> str | None:
        """The Tonehub workspace a Slack team meters to."""
        with self.sessions() as session:
            row = self._row(session, *_keys(enterprise_id, team_id, False))
            return row.workspace_id if row is not None else None

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the bot token (``tokens_revoked`` for the bot)."""
        with self.sessions() as session:
            row = self._row(session, *_keys(enterprise_id, team_id, False))
            if row is None:
                return
            if row.bot_token is not None:
                _uninstalled(session, row, "tokens_revoked")
            data = json.loads(row.data)
            data.update(bot_token=None, bot_refresh_token=None)
            row.data, row.bot_token = json.dumps(data), None
            session.commit()

    def delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        """Delete the installation's tokens (``app_uninstalled``).

        The row stays, without tokens, so the team keeps its link to its
        Tonehub workspace (and quota) if it installs again. A user's token
        being revoked (``user_id`` given) changes nothing: the app is bot-only.
        """
        if user_id is not None:
            return
        with self.sessions() as session:
            row = self._row(session, *_keys(enterprise_id, team_id, False))
            if row is not None:
                if row.bot_token is not None:
                    _uninstalled(session, row, "app_uninstalled")
                data = json.loads(row.data)
                for name in (
                    "bot_token",
                    "bot_refresh_token",
                    "user_token",
                    "user_refresh_token",
                ):
                    data[name] = None
                row.data, row.bot_token = json.dumps(data), None
                session.commit()
                logger.info(
                    "Slack installation %s/%s uninstalled", enterprise_id, team_id
                )


def _uninstalled(session: Session, row: SlackInstallation, reason: str) -> None:
    """Tell the workspace's webhooks that Slack took the bot's token away."""
    emit(
        session,
        row.workspace_id,
        "connector.error",
        {
            "connector": "slack",
            "reason": reason,
            "team_id": row.team_key or None,
            "enterprise_id": row.enterprise_key or None,
            "message": "Tonehub was removed from the Slack workspace (or its "
            "token revoked); messages are no longer scored. Install it again "
            "from the dashboard.",
        },
    )


def _keys(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> tuple[str, str]:
    if is_enterprise_install:
        return enterprise_id or "", ""
    return enterprise_id or "", team_id or ""


class TonehubOAuthStateStore(OAuthStateStore):
    """Single-use OAuth states in ``slack_oauth_states``.

    Args:
        sessions: Database sessions.
        ttl: How long a state stays valid.
    """

    def __init__(self, sessions: sessionmaker[Session], *, ttl: timedelta = STATE_TTL):
        self.sessions = sessions
        self.ttl = ttl

    @property
    def logger(self) -> logging.Logger:
        return logger

    def issue(self, *args: Any, **kwargs: Any) -> str:
        """A new state; ``workspace_id=`` binds it to a Tonehub workspace."""
        state = secrets.token_urlsafe(24)
        with self.sessions() as session:
            session.add(
                SlackOAuthState(
                    state=state,
                    workspace_id=kwargs.get("workspace_id"),
                    expires_at=utcnow() + self.ttl,
                )
            )
            session.commit()
        return state

    def consume(self, state: str) -> bool:
        """Use a state once: ``True`` only for a live, unused state."""
        if not isinstance(state, str) or not state:
            return False
        now = utcnow()
        with self.sessions() as session:
            result = session.execute(
                update(SlackOAuthState)
                .where(
                    SlackOAuthState.state == state,
                    SlackOAuthState.consumed_at.is_(None),
                    SlackOAuthState.expires_at > now,
                )
                .values(consumed_at=now)
            )
            session.execute(
                delete(SlackOAuthState).where(
                    SlackOAuthState.expires_at < now - timedelta(days=1)
                )
            )
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def workspace_of(self, state: str) -> str | None:
        """The Tonehub workspace a state was issued for."""
        with self.sessions() as session:
            row = session.get(SlackOAuthState, state)
            return row.workspace_id if row is not None else None
