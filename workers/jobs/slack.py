"""Slack jobs: score one channel message and write the result back."""

from __future__ import annotations

from typing import Any

from connectors.slack.processing import process_message
from connectors.slack.service import slack_deps
from workers import runtime


def process_slack_message(
    event_id: str, team_id: str, enterprise_id: str | None, event: dict[str, Any]
) -> str:
    """Score a message event (at most once per message) and write back.

    A rate-limited workspace raises, so RQ retries the job later (its
    ``Retry`` policy); Slack API errors raise likewise.

    Returns:
        What happened (``scored``, ``duplicate``, ``skipped:<why>``, ...).
    """
    rt = runtime.get()
    deps = slack_deps(
        rt.settings, sessions=rt.sessions, redis=rt.redis, scoring=rt.scoring
    )
    return process_message(
        deps, team_id=team_id, enterprise_id=enterprise_id, event=event
    )
