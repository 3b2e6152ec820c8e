"""Writing sentiment back to Slack: reactions, thread replies, alerts, DMs.

Every call goes through slack_sdk's ``WebClient`` with its rate-limit retry
handler, which waits out a 429's ``Retry-After`` and tries again.
"""

from __future__ import annotations

import json
import re

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

REACTIONS: dict[str, str] = {
    "positive": "large_green_circle",
    "neutral": "white_circle",
    "negative": "red_circle",
    "mixed": "large_orange_circle",
}
"""Default emoji per label for the ``reactions`` mode."""

NEGATIVE_REPLY_CONFIDENCE = 0.7
"""The ``negative`` mode replies only above this probability of negative."""


def web_client(token: str | None, *, base_url: str) -> WebClient:
    """A Web API client that retries 429s after ``Retry-After`` (twice)."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )


EMOJI_NAME = re.compile(r"^[a-z0-9_+'\-]{1,100}$")
"""A Slack emoji name (standard or custom), without the colons."""


def emoji_for(label: str, overrides: str | None) -> str:
    """The channel's emoji for ``label``: its override (JSON) or the default."""
    try:
        chosen = json.loads(overrides or "{}").get(label)
    except (ValueError, AttributeError):
        chosen = None
    if isinstance(chosen, str) and EMOJI_NAME.match(chosen):
        return chosen
    return REACTIONS[label]


def add_reaction(
    client: WebClient, channel: str, ts: str, label: str, *, emoji: str | None = None
) -> None:
    """React to a message with the label's emoji (once: a repeat is a no-op)."""
    try:
        client.reactions_add(
            channel=channel, timestamp=ts, name=emoji or REACTIONS[label]
        )
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":
            raise


def reply_negative(
    client: WebClient, channel: str, ts: str, *, confidence: float, brand: str
) -> None:
    """A thread reply flagging a negative message, signed with the brand."""
    client.chat_postMessage(
        channel=channel,
        thread_ts=ts,
        text=(
            f"*{brand}* :red_circle: This message reads as negative "
            f"({confidence:.0%} confidence). Someone may want to follow up."
        ),
    )


def post_alert(
    client: WebClient,
    channel: str,
    *,
    source: str,
    negative: int,
    total: int,
    brand: str,
) -> None:
    """The channel-mood alert, signed with the brand."""
    client.chat_postMessage(
        channel=channel,
        text=(
            f"*{brand}* :rotating_light: <#{source}> turned negative: "
            f"{negative} of the last {total} messages scored negative."
        ),
    )
