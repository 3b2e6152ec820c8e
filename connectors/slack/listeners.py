"""The Slack listeners: messages, uninstalls, the slash command, App Home.

Listeners ack at once: a message only hands its event to ``on_message``
(which enqueues a worker job, deduplicated on the event id), so Slack gets
its 200 well within 3 seconds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from connectors.slack.commands import SlashCommands
from connectors.slack.installation_store import TonehubInstallationStore

logger = logging.getLogger(__name__)


def register_listeners(
    app: App,
    *,
    installation_store: TonehubInstallationStore,
    on_message: Callable[[str, str, str | None, Mapping[str, Any]], None],
    commands: SlashCommands,
) -> None:
    """Attach every listener to ``app``."""

    @app.event("message")
    def message(body: dict[str, Any], event: dict[str, Any]) -> None:
        team_id = event.get("team") or body.get("team_id")
        event_id = body.get("event_id")
        if not isinstance(team_id, str) or not isinstance(event_id, str):
            return
        enterprise_id = body.get("enterprise_id")
        on_message(event_id, team_id, enterprise_id, event)

    # app_uninstalled and tokens_revoked delete the tokens (bolt's own listeners
    # over our installation store).
    app.enable_token_revocation_listeners()

    @app.command("/sentiment")
    def sentiment(
        ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond
    ) -> None:
        ack(
            response_type="ephemeral",
            text=commands.handle(
                command,
                enterprise_id=context.enterprise_id,
                team_id=context.team_id or command.get("team_id", ""),
            ),
        )

    @app.event("app_home_opened")
    def home(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("tab") not in (None, "home") or not event.get("user"):
            return
        view = commands.home_view(
            enterprise_id=context.enterprise_id, team_id=context.team_id or ""
        )
        client.views_publish(user_id=event["user"], view=view)

    @app.event("app_mention")
    def mention() -> None:
        """Mentions also arrive as message events; those are scored."""

    @app.event(re.compile(".*"))
    def other() -> None:
        """Any other event: acknowledged (a 404 would make Slack retry it)."""
