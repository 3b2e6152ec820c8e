"""What a worker does with one Slack message event, exactly once.

1. Skip what is not a plain user message in a channel that is on.
2. Claim the message (primary key team, channel, ts): Slack's retries and a
   second event for the same message (``message`` plus ``app_mention``) find
   it claimed.
3. Admit one unit (the same Redis admission as the API; source ``slack``).
4. Score the normalised text, record the usage in the ledger under a batch id
   derived from the message (so a retried job cannot record it twice), store
   label and score (never the text; the author only as a salted hash).
5. Write back per the channel's mode, then check the channel's mood alert.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack import writeback
from connectors.slack.installation_store import TonehubInstallationStore
from connectors.slack.markup import normalise
from core.billing.state import plan_in_force
from core.metering import Meter, UsageKey
from core.metering.ledger import apply_batch, record_thresholds
from core.metering.periods import period_of
from core.persistence.models import (
    SlackChannel,
    SlackMessage,
    Workspace,
)
from core.scoring.engine import MAX_TEXT_CHARS
from core.scoring.service import ScoringService
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

ALERT_WINDOW_MESSAGES = 20
"""The mood alert looks at a channel's last 20 scored messages..."""
ALERT_WINDOW = timedelta(hours=1)
"""...of the last hour,"""
ALERT_MIN_MESSAGES = 5
"""...needs at least this many,"""
ALERT_COOLDOWN = timedelta(hours=1)
"""...and fires at most once an hour per channel."""

MODES = ("reactions", "negative", "off")


class RetryLater(Exception):
    """Rate limited: the job should run again after ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"rate limited, retry in {seconds} s")
        self.seconds = seconds


@dataclass
class SlackDeps:
    """What processing needs, injected by the worker (or a test)."""

    sessions: sessionmaker[Session]
    redis: Redis
    scoring: ScoringService
    store: TonehubInstallationStore
    client_for: Callable[[str | None, str | None], WebClient | None]
    """(enterprise_id, team_id) -> a client with the bot token, or None."""
    user_salt: bytes
    grace: timedelta

    @property
    def meter(self) -> Meter:
        return Meter(self.redis, self.sessions)


def skip_reason(event: Mapping[str, Any], *, bot_user_id: str | None) -> str | None:
    """Why a message event is not scored, or ``None`` to score it."""
    if event.get("type") != "message":
        return "not_a_message"
    for name in ("channel", "ts", "user"):
        if not isinstance(event.get(name), str) or not event.get(name):
            return f"no_{name}"
    if event.get("subtype") is not None:
        return f"subtype:{event.get('subtype')}"
    if event.get("bot_id") or event.get("bot_profile"):
        return "bot_message"
    if bot_user_id is not None and event.get("user") == bot_user_id:
        return "own_message"
    if not event.get("user"):
        return "no_user"
    if event.get("channel_type") not in ("channel", "group"):
        return "not_a_channel"
    text = event.get("text")
    if not isinstance(text, str) or not text.strip():
        return "no_text"
    if len(text) > MAX_TEXT_CHARS:
        return "text_too_long"  # Slack caps messages at 40,000 characters
    return None


def user_hash(salt: bytes, user: str) -> str:
    """The author as stored: HMAC-SHA256 with a deployment secret."""
    return hmac.new(salt, user.encode(), hashlib.sha256).hexdigest()


def channel_settings(
    session: Session, team_id: str, channel_id: str, workspace_id: str
) -> SlackChannel:
    """A channel's settings, created with the defaults on first use."""
    row = session.get(SlackChannel, (team_id, channel_id))
    if row is None:
        row = SlackChannel(
            team_id=team_id,
            channel_id=channel_id,
            workspace_id=workspace_id,
            enabled=True,
            mode="reactions",
            alert_threshold=50,
            reactions="{}",
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            row = session.get(SlackChannel, (team_id, channel_id))
            assert row is not None
    return row


def process_message(
    deps: SlackDeps,
    *,
    team_id: str,
    enterprise_id: str | None,
    event: Mapping[str, Any],
    now: datetime | None = None,
) -> str:
    """Score one message event and write back; returns what happened.

    Raises:
        RetryLater: The workspace's rate limit refused it for now.
        SlackApiError: Slack refused a write (the job retries).
    """
    now = now or datetime.now(UTC)
    installation = deps.store.find_installation(
        enterprise_id=enterprise_id, team_id=team_id
    )
    if installation is None:
        return "not_installed"
    reason = skip_reason(event, bot_user_id=installation.bot_user_id)
    if reason is not None:
        return f"skipped:{reason}"
    workspace_id = deps.store.workspace_for(enterprise_id, team_id)
    assert workspace_id is not None
    channel, ts = str(event["channel"]), str(event["ts"])
    text = normalise(str(event["text"]))
    with deps.sessions() as session:
        settings = channel_settings(session, team_id, channel, workspace_id)
        if not settings.enabled:
            return "skipped:channel_off"
        if not text:
            return "skipped:no_text"
        row = _claim(session, deps, team_id, channel, ts, workspace_id, event)
        if row.status in ("done", "skipped"):
            return "duplicate"
        if row.status == "claimed":
            outcome = _score(
                session, deps, row, text, now=now, enterprise_id=enterprise_id
            )
            if outcome != "scored":
                return outcome
        client = deps.client_for(enterprise_id, team_id)
        if client is not None:
            _write_back(client, settings, row, brand=_brand(session, workspace_id))
        row.status = "done"
        session.commit()
        if client is not None:
            _check_alert(session, client, settings, now=now)
    return "scored"


def _claim(
    session: Session,
    deps: SlackDeps,
    team_id: str,
    channel: str,
    ts: str,
    workspace_id: str,
    event: Mapping[str, Any],
) -> SlackMessage:
    row = session.get(SlackMessage, (team_id, channel, ts))
    if row is not None:
        return row
    row = SlackMessage(
        team_id=team_id,
        channel_id=channel,
        ts=ts,
        workspace_id=workspace_id,
        user_hash=user_hash(deps.user_salt, str(event.get("user"))),
        status="claimed",
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # another job claimed it a moment ago
        session.rollback()
        row = session.get(SlackMessage, (team_id, channel, ts), populate_existing=True)
        assert row is not None
    return row


def _score(
    session: Session,
    deps: SlackDeps,
    row: SlackMessage,
    text: str,
    *,
    now: datetime,
    enterprise_id: str | None,
) -> str:
    workspace = session.get(Workspace, row.workspace_id)
    assert workspace is not None
    plan = plan_in_force(workspace, now=now, grace=deps.grace)
    admission = deps.meter.admit(row.workspace_id, plan, 1)
    if admission.reason == "rate":
        raise RetryLater(admission.retry_after)
    if admission.reason == "quota":
        row.status = "skipped"
        session.commit()
        _tell_installer_once(deps, row, enterprise_id, admission.period, plan.title)
        return "quota_exceeded"
    try:
        result = deps.scoring.score([text])[0]
        batch = (
            "slack:"
            + hashlib.sha1(
                f"{row.team_id}/{row.channel_id}/{row.ts}".encode()
            ).hexdigest()[:34]
        )
        usage = Counter({UsageKey(now.date(), "slack", "", result["label"]): 1})
        if not apply_batch(session, row.workspace_id, batch, usage):
            # A previous attempt recorded it and died before saving the row.
            deps.meter.refund(row.workspace_id, admission.period, 1)
    except Exception:
        deps.meter.refund(row.workspace_id, admission.period, 1)
        raise
    row.label = result["label"]
    row.score = result["score"]
    row.confidence = max(result["confidence"].values())
    row.model = result["model"]
    row.status = "scored"
    session.commit()
    # Connector usage goes to the ledger directly, not through the flush:
    # check the 80% / 100% thresholds here (recorded once a period).
    record_thresholds(session, row.workspace_id, now=now, grace=deps.grace)
    return "scored"


def _brand(session: Session, workspace_id: str) -> str:
    """The workspace's display name (white-label), else Tonehub."""
    workspace = session.get(Workspace, workspace_id)
    return (workspace.display_name if workspace is not None else None) or "Tonehub"


def _write_back(
    client: WebClient, settings: SlackChannel, row: SlackMessage, *, brand: str
) -> None:
    assert row.label is not None
    if settings.mode == "reactions":
        writeback.add_reaction(
            client,
            row.channel_id,
            row.ts,
            row.label,
            emoji=writeback.emoji_for(row.label, settings.reactions),
        )
    elif settings.mode == "negative" and row.label == "negative":
        confidence = row.confidence or 0.0
        if confidence >= writeback.NEGATIVE_REPLY_CONFIDENCE:
            writeback.reply_negative(
                client, row.channel_id, row.ts, confidence=confidence, brand=brand
            )


def _tell_installer_once(
    deps: SlackDeps,
    row: SlackMessage,
    enterprise_id: str | None,
    period: str,
    plan_title: str,
) -> None:
    key = f"th:slack:quota-dm:{row.workspace_id}:{period}"
    if not deps.redis.set(key, 1, nx=True, ex=40 * 86_400):
        return
    installation = deps.store.find_installation(
        enterprise_id=enterprise_id, team_id=row.team_id
    )
    client = deps.client_for(enterprise_id, row.team_id)
    if installation is None or client is None or not installation.user_id:
        return
    client.chat_postMessage(
        channel=installation.user_id,
        text=(
            f"Tonehub has used this month's {plan_title} quota, so it stopped "
            "scoring messages until the quota resets. Upgrade the plan to resume."
        ),
    )


def channel_mood(
    session: Session, team_id: str, channel_id: str, *, since: datetime
) -> dict[str, Any]:
    """Counts per label and the net sentiment score of a channel since a time."""
    rows = session.execute(
        select(SlackMessage.label).where(
            SlackMessage.team_id == team_id,
            SlackMessage.channel_id == channel_id,
            SlackMessage.label.is_not(None),
            SlackMessage.created_at >= since,
        )
    ).scalars()
    counts = Counter(str(label) for label in rows)
    scored = sum(counts.values())
    net = (counts["positive"] - counts["negative"]) / scored * 100 if scored else 0.0
    return {"counts": dict(counts), "scored": scored, "net": round(net, 1)}


def _check_alert(
    session: Session, client: WebClient, settings: SlackChannel, *, now: datetime
) -> None:
    if not settings.alert_channel:
        return
    last = settings.last_alert_at
    if last is not None and now - last.replace(tzinfo=UTC) < ALERT_COOLDOWN:
        return
    labels = list(
        session.execute(
            select(SlackMessage.label)
            .where(
                SlackMessage.team_id == settings.team_id,
                SlackMessage.channel_id == settings.channel_id,
                SlackMessage.label.is_not(None),
                SlackMessage.created_at >= now - ALERT_WINDOW,
            )
            .order_by(SlackMessage.created_at.desc())
            .limit(ALERT_WINDOW_MESSAGES)
        ).scalars()
    )
    negative = sum(1 for label in labels if label == "negative")
    if len(
        labels
    ) < ALERT_MIN_MESSAGES or negative * 100 < settings.alert_threshold * len(labels):
        return
    settings.last_alert_at = now
    data = {
        "source": "slack",
        "team_id": settings.team_id,
        "channel": settings.channel_id,
        "negative": negative,
        "window": len(labels),
        "threshold_percent": settings.alert_threshold,
        "period": period_of(now),
    }
    emit(session, settings.workspace_id, "sentiment.alert", data, now=now)
    session.commit()  # the cooldown first: two workers never both post
    try:
        writeback.post_alert(
            client,
            settings.alert_channel,
            source=settings.channel_id,
            negative=negative,
            total=len(labels),
            brand=_brand(session, settings.workspace_id),
        )
    except SlackApiError as exc:
        # The message itself is done; give the cooldown back so that the
        # channel's next message tries the alert again.
        settings.last_alert_at = last
        session.commit()
        logger.warning(
            "Slack alert for %s/%s not posted (%s); the next message retries it",
            settings.team_id,
            settings.channel_id,
            exc.response.get("error"),
        )
        return
    logger.info("Slack alert for %s/%s", settings.team_id, settings.channel_id)
