"""Bot-token Web API clients for workers, refreshing rotated tokens first."""

from __future__ import annotations

import logging
import time

from slack_sdk import WebClient
from slack_sdk.oauth.token_rotation import TokenRotator

from connectors.slack.installation_store import TonehubInstallationStore
from connectors.slack.writeback import web_client
from core.config import Settings

logger = logging.getLogger(__name__)

ROTATE_MINUTES_BEFORE_EXPIRY = 120
"""A rotating token is refreshed when it expires within two hours."""


class BotClients:
    """``(enterprise_id, team_id) -> WebClient`` with the team's bot token.

    Args:
        settings: API URL and the app's client id/secret (for refreshes).
        store: The installation store.
    """

    def __init__(self, settings: Settings, store: TonehubInstallationStore) -> None:
        self.settings = settings
        self.store = store

    def __call__(
        self, enterprise_id: str | None, team_id: str | None
    ) -> WebClient | None:
        bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None
        expires = bot.bot_token_expires_at
        if bot.bot_refresh_token and expires is not None:
            if expires - time.time() < ROTATE_MINUTES_BEFORE_EXPIRY * 60:
                rotator = TokenRotator(
                    client_id=self.settings.slack_client_id,
                    client_secret=self.settings.slack_client_secret,
                    client=web_client(None, base_url=self.settings.slack_api_url),
                )
                fresh = rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE_EXPIRY
                )
                if fresh is not None:
                    self.store.save_bot(fresh)
                    bot = fresh
                    logger.info(
                        "Slack bot token of %s/%s refreshed", enterprise_id, team_id
                    )
        return web_client(bot.bot_token, base_url=self.settings.slack_api_url)
