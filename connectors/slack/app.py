"""``build_bolt_app``: the Slack app, built by a function, never at import.

An ``App`` built with a token calls ``auth.test`` in its constructor, so the
app is built with OAuth settings instead and looks each team's token up in
the installation store when a request arrives.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App
from slack_bolt.oauth.callback_options import CallbackOptions
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient

from connectors.slack.commands import SlashCommands
from connectors.slack.installation_store import (
    TonehubInstallationStore,
    TonehubOAuthStateStore,
)
from connectors.slack.listeners import register_listeners
from connectors.slack.oauth import TonehubOAuthFlow
from connectors.slack.writeback import web_client
from core.config import Settings

BOT_SCOPES = (
    "channels:history",
    "groups:history",
    "reactions:write",
    "chat:write",
    "commands",
    "im:write",
    "channels:read",
    "groups:read",
)
"""Exactly the scopes in ``manifest.yml``."""

OnMessage = Callable[[str, str, str | None, Mapping[str, Any]], None]
"""(event_id, team_id, enterprise_id, event) -> None: hands a message to a worker."""


def authorization_url(api_url: str) -> str:
    """Slack's authorize page next to its Web API (the fake's in demos)."""
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/oauth/v2/authorize"


def build_bolt_app(
    settings: Settings,
    *,
    installation_store: TonehubInstallationStore,
    state_store: TonehubOAuthStateStore,
    on_message: OnMessage,
    commands: SlashCommands,
    client: WebClient | None = None,
) -> App:
    """The Slack app with OAuth, the event listeners and the slash command.

    Args:
        settings: Signing secret, client id/secret, API URL.
        installation_store: Where installations live.
        state_store: Where OAuth states live.
        on_message: Enqueues a message event for a worker.
        commands: Handles ``/sentiment``.
        client: The Web API client (one pointing at ``slack_api_url`` if None).
    """
    client = client or web_client(None, base_url=settings.slack_api_url)
    public = settings.public_url.rstrip("/")
    oauth_settings = OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=installation_store,
        state_store=state_store,
        install_path="/slack/install",
        # /slack/install redirects straight to Slack's consent page.
        install_page_rendering_enabled=False,
        redirect_uri_path="/slack/oauth_redirect",
        redirect_uri=f"{public}/slack/oauth_redirect",
        authorization_url=authorization_url(settings.slack_api_url),
        callback_options=CallbackOptions(success=_success, failure=_failure),
        installation_store_bot_only=True,
        # Token rotation on: bolt refreshes tokens that expire within 2 hours.
        token_rotation_expiration_minutes=120,
    )
    oauth_flow = TonehubOAuthFlow(client=client, settings=oauth_settings)
    app = App(
        signing_secret=settings.slack_signing_secret,
        client=client,
        oauth_flow=oauth_flow,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    register_listeners(
        app,
        installation_store=installation_store,
        on_message=on_message,
        commands=commands,
    )
    return app


def _success(args: Any) -> Any:
    from slack_bolt import BoltResponse

    return BoltResponse(
        status=200,
        body="<!doctype html><title>Tonehub</title><h1>Tonehub is installed</h1>"
        "<p>Invite the bot to a channel (/invite @Tonehub) to start scoring.</p>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )


def _failure(args: Any) -> Any:
    from slack_bolt import BoltResponse

    return BoltResponse(
        status=args.suggested_status_code,
        body="<!doctype html><title>Tonehub</title><h1>Installation failed</h1>"
        f"<p>Reason: {html.escape(str(args.reason))}. Start again from Tonehub.</p>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
