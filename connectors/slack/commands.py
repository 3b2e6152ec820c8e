"""``/sentiment`` and the App Home view."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack import writeback
from connectors.slack.installation_store import TonehubInstallationStore
from connectors.slack.markup import normalise
from connectors.slack.processing import MODES, channel_mood, channel_settings
from core.billing.state import plan_in_force
from core.errors import TonehubError
from core.metering import Meter, record_usage_durably
from core.persistence.models import SlackChannel, Workspace
from core.scoring.service import ScoringService

HELP = (
    "*/sentiment <text>* score a text (only you see the answer)\n"
    "*/sentiment mood* this channel's mood over the last 7 days\n"
    "*/sentiment on* | *off* score this channel's messages, or stop\n"
    "*/sentiment mode reactions|negative|off* react to every message, reply to "
    "negative ones, or stay silent\n"
    "*/sentiment alerts #channel threshold N* alert #channel when N% of recent "
    "messages here are negative (*/sentiment alerts off* to stop)\n"
    "*/sentiment emoji negative :fire:* the reaction for a label here "
    "(positive, neutral, negative, mixed; */sentiment emoji reset* for the defaults)"
)

_ALERTS = re.compile(
    r"^alerts\s+<#([CG][A-Z0-9]+)(?:\|[^>]*)?>\s+threshold\s+(\d{1,3})$"
)

MAX_COMMAND_TEXT = 4_000
"""``/sentiment <text>`` is answered within Slack's 3 s; longer goes to the API."""


@dataclass
class SlashCommands:
    """Handles ``/sentiment`` in the web process (scoring a text takes ms)."""

    sessions: sessionmaker[Session]
    redis: Redis
    scoring: ScoringService
    store: TonehubInstallationStore
    grace: timedelta

    def handle(
        self, command: dict[str, Any], *, enterprise_id: str | None, team_id: str
    ) -> str:
        """The ephemeral answer to one ``/sentiment`` invocation."""
        text = str(command.get("text") or "").strip()
        channel = str(command.get("channel_id") or "")
        workspace_id = self.store.workspace_for(enterprise_id, team_id)
        if workspace_id is None:
            return "Tonehub is not installed in this workspace."
        word = text.split(maxsplit=1)[0].lower() if text else "help"
        if word == "help":
            return HELP
        if word == "mood":
            return self._mood(team_id, channel)
        if word in ("on", "off") and text.lower() == word:
            return self._set(team_id, channel, workspace_id, enabled=word == "on")
        if word == "mode":
            parts = text.split()
            mode = parts[1].lower() if len(parts) == 2 else ""
            if mode not in MODES:
                return "Modes are: reactions, negative, off."
            return self._set(team_id, channel, workspace_id, mode=mode)
        if word == "alerts":
            return self._alerts(team_id, channel, workspace_id, text)
        if word == "emoji":
            return self._emoji(team_id, channel, workspace_id, text)
        return self._score(workspace_id, text)

    def _set(self, team_id: str, channel: str, workspace_id: str, **values: Any) -> str:
        with self.sessions() as session:
            row = channel_settings(session, team_id, channel, workspace_id)
            for name, value in values.items():
                setattr(row, name, value)
            session.commit()
            state = "on" if row.enabled else "off"
            return f"Scoring in this channel is {state}; mode: {row.mode}."

    def _alerts(self, team_id: str, channel: str, workspace_id: str, text: str) -> str:
        if text.lower() == "alerts off":
            self._set(team_id, channel, workspace_id, alert_channel=None)
            return "Alerts for this channel are off."
        match = _ALERTS.match(text)
        if match is None or not 1 <= int(match.group(2)) <= 100:
            return "Use: /sentiment alerts #channel threshold N (N from 1 to 100)."
        self._set(
            team_id,
            channel,
            workspace_id,
            alert_channel=match.group(1),
            alert_threshold=int(match.group(2)),
        )
        return (
            f"Alerts go to <#{match.group(1)}> when {match.group(2)}% of this "
            "channel's recent messages are negative."
        )

    def _emoji(self, team_id: str, channel: str, workspace_id: str, text: str) -> str:
        parts = text.split()
        if [p.lower() for p in parts] == ["emoji", "reset"]:
            self._set(team_id, channel, workspace_id, reactions="{}")
            return "Reactions here are back to the defaults."
        label = parts[1].lower() if len(parts) == 3 else ""
        name = parts[2].strip(":").lower() if len(parts) == 3 else ""
        if label not in writeback.REACTIONS or not writeback.EMOJI_NAME.match(name):
            return (
                "Use: /sentiment emoji <positive|neutral|negative|mixed> :emoji_name:"
            )
        with self.sessions() as session:
            row = channel_settings(session, team_id, channel, workspace_id)
            chosen = json.loads(row.reactions or "{}")
            chosen[label] = name
            row.reactions = json.dumps(chosen, sort_keys=True)
            session.commit()
        return f"{label.capitalize()} messages here get :{name}:."

    def _mood(self, team_id: str, channel: str) -> str:
        now = datetime.now(UTC)
        with self.sessions() as session:
            week = channel_mood(
                session, team_id, channel, since=now - timedelta(days=7)
            )
            both = channel_mood(
                session, team_id, channel, since=now - timedelta(days=14)
            )
        if not week["scored"]:
            return "No scored messages in this channel in the last 7 days."
        counts = week["counts"]
        before = _minus(both, week)
        trend = "no earlier week to compare"
        if before["scored"]:
            delta = week["net"] - before["net"]
            trend = f"{delta:+.1f} points on the week before"
        return (
            f"Last 7 days: {week['scored']} messages scored: "
            f"{counts.get('positive', 0)} positive, "
            f"{counts.get('neutral', 0)} neutral, "
            f"{counts.get('negative', 0)} negative, "
            f"{counts.get('mixed', 0)} mixed. "
            f"Net sentiment {week['net']:+.1f} ({trend})."
        )

    def _score(self, workspace_id: str, text: str) -> str:
        if len(text) > MAX_COMMAND_TEXT:
            return (
                f"/sentiment scores up to {MAX_COMMAND_TEXT:,} characters; use the "
                "API (POST /v1/sentiment) for longer texts."
            )
        clean = normalise(text)
        if not clean:
            return "Give me some text: /sentiment <text>"
        now = datetime.now(UTC)
        with self.sessions() as session:
            workspace = session.get(Workspace, workspace_id)
            assert workspace is not None
            plan = plan_in_force(workspace, now=now, grace=self.grace)
        meter = Meter(self.redis, self.sessions)
        admission = meter.admit(workspace_id, plan, 1)
        if not admission.admitted:
            try:
                admission.raise_if_refused()
            except TonehubError as exc:
                return exc.message
        try:
            result = self.scoring.score([clean])[0]
        except TonehubError as exc:
            meter.refund(workspace_id, admission.period, 1)
            return exc.message
        record_usage_durably(
            self.redis,
            self.sessions,
            workspace_id,
            source="slack",
            labels=[result["label"]],
            day=now.date(),
        )
        conf = result["confidence"]
        return (
            f"*{result['label']}* (score {result['score']:+.2f}; negative "
            f"{conf['negative']:.0%}, neutral {conf['neutral']:.0%}, positive "
            f"{conf['positive']:.0%})"
        )

    def home_view(self, *, enterprise_id: str | None, team_id: str) -> dict[str, Any]:
        """The App Home tab: channels and their mood, usage against the plan."""
        workspace_id = self.store.workspace_for(enterprise_id, team_id)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": "Tonehub"}}
        ]
        if workspace_id is None:
            return {"type": "home", "blocks": blocks}
        now = datetime.now(UTC)
        with self.sessions() as session:
            workspace = session.get(Workspace, workspace_id)
            assert workspace is not None
            plan = plan_in_force(workspace, now=now, grace=self.grace)
            channels = session.scalars(
                select(SlackChannel).where(SlackChannel.team_id == team_id)
            ).all()
            lines = []
            for ch in channels:
                mood = channel_mood(
                    session, team_id, ch.channel_id, since=now - timedelta(days=7)
                )
                state = ch.mode if ch.enabled else "off"
                lines.append(
                    f"<#{ch.channel_id}>: {mood['scored']} scored, net "
                    f"{mood['net']:+.1f} ({state})"
                )
        used = Meter(self.redis, self.sessions).used(workspace_id, now)
        quota = plan.monthly_quota
        limit = f"{quota:,}" if quota is not None else "unlimited"
        blocks.append(
            _section(f"*{plan.title} plan*: {used:,} of {limit} texts this month")
        )
        blocks.append(_section("\n".join(lines) or "No channels scored yet."))
        return {"type": "home", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _minus(both: dict[str, Any], week: dict[str, Any]) -> dict[str, Any]:
    counts = {
        k: both["counts"].get(k, 0) - week["counts"].get(k, 0) for k in both["counts"]
    }
    scored = both["scored"] - week["scored"]
    net = (
        (counts.get("positive", 0) - counts.get("negative", 0)) / scored * 100
        if scored
        else 0.0
    )
    return {"counts": counts, "scored": scored, "net": net}
