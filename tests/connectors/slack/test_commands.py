"""/sentiment, App Home, alerts, the negative mode, token rotation, Grid installs."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from sqlalchemy import func, select

from core.persistence.models import OutboundEvent, SlackChannel, UsageDaily, Workspace
from tests.connectors.slack.conftest import message_event

NEGATIVE = "This is the third outage this week and nobody answers. I am furious."
POSITIVE = "Thank you so much, the fix works perfectly!"


def command(slack, text: str, channel: str = "C0SUPPORT"):
    body = urlencode(
        {
            "token": "legacy",
            "team_id": "T0001",
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "support",
            "user_id": "U0ALICE",
            "user_name": "alice",
            "command": "/sentiment",
            "text": text,
            "api_app_id": "A0TONEHUB",
            "response_url": "http://localhost/r",
            "trigger_id": "1.2.3",
        }
    ).encode()
    response = slack.post(body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_sentiment_scores_a_text_ephemerally_and_meters_it(slack) -> None:
    ws = slack.install()
    answer = command(slack, POSITIVE)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("*positive*")
    slack.app.test_cli_runner().invoke(args=["flush-usage"])
    with slack.app.extensions["tonehub"].sessions() as s:
        used = s.scalar(
            select(func.sum(UsageDaily.count)).where(
                UsageDaily.workspace_id == ws, UsageDaily.source == "slack"
            )
        )
    assert used == 1


def test_help_settings_and_mode(slack) -> None:
    slack.install()
    assert "/sentiment mood" in command(slack, "help")["text"]
    assert "off" in command(slack, "off")["text"]
    slack.post(message_event(NEGATIVE))
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []  # the channel is off
    command(slack, "on")
    assert "negative" in command(slack, "mode negative")["text"]
    assert "Modes are" in command(slack, "mode loud")["text"]
    slack.post(message_event(POSITIVE))
    slack.post(message_event(NEGATIVE))
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []
    replies = [
        c
        for c in slack.fake.calls_to("chat.postMessage")
        if c["params"].get("thread_ts")
    ]
    assert len(replies) == 1 and "negative" in replies[0]["params"]["text"]
    assert replies[0]["params"]["text"].startswith("*Tonehub*")


def test_mood_comes_from_stored_scores(slack) -> None:
    slack.install()
    assert "No scored messages" in command(slack, "mood")["text"]
    for text in (POSITIVE, POSITIVE, NEGATIVE):
        slack.post(message_event(text))
    slack.work()
    calls_before = len(slack.fake.calls)
    mood = command(slack, "mood")["text"]
    assert "3 messages scored: 2 positive" in mood and "1 negative" in mood
    assert "Net sentiment +33.3" in mood
    # No history calls to Slack: the answer comes from the stored scores.
    assert not [
        c
        for c in slack.fake.calls[calls_before:]
        if c["method"].startswith("conversations.")
    ]


def test_alert_fires_once_with_cooldown_and_emits_an_event(slack) -> None:
    ws = slack.install()
    with slack.app.extensions["tonehub"].sessions() as s:
        s.get(Workspace, ws).display_name = "Acme Care"
        s.commit()
    answer = command(slack, "alerts <#C0ALERTS|alerts> threshold 60")
    assert "<#C0ALERTS>" in answer["text"]
    assert "Use:" in command(slack, "alerts #alerts threshold 500")["text"]
    for text in (NEGATIVE, NEGATIVE, POSITIVE, NEGATIVE, NEGATIVE, NEGATIVE, NEGATIVE):
        slack.post(message_event(text))
    slack.work()
    alerts = [
        c
        for c in slack.fake.calls_to("chat.postMessage")
        if c["params"].get("channel") == "C0ALERTS"
    ]
    assert len(alerts) == 1 and "<#C0SUPPORT>" in alerts[0]["params"]["text"]
    assert alerts[0]["params"]["text"].startswith("*Acme Care*")  # white-label
    with slack.app.extensions["tonehub"].sessions() as s:
        [event] = s.scalars(select(OutboundEvent)).all()
        assert event.type == "sentiment.alert" and event.workspace_id == ws
        assert s.get(SlackChannel, ("T0001", "C0SUPPORT")).last_alert_at is not None


def test_app_home_shows_channels_and_usage(slack) -> None:
    slack.install()
    slack.post(message_event(POSITIVE))
    slack.work()
    home = message_event("x")
    home["event"] = {
        "type": "app_home_opened",
        "user": "U0ALICE",
        "channel": "D0",
        "tab": "home",
        "event_ts": "1",
    }
    assert slack.post(home).status_code == 200
    deadline = time.monotonic() + 5
    while not slack.fake.calls_to("views.publish") and time.monotonic() < deadline:
        time.sleep(0.05)
    [call] = slack.fake.calls_to("views.publish")
    text = str(call["params"]["view"])
    assert "Basic plan" in text and "1 of 10,000" in text and "C0SUPPORT" in text


def test_reaction_within_a_second_of_the_worker_picking_it_up(slack) -> None:
    slack.install()
    slack.post(message_event(NEGATIVE))
    started = time.time()  # the worker starts and picks the job up at once
    slack.work()
    [call] = slack.fake.calls_to("reactions.add")
    assert call["at"] - started < 1.0


def test_token_rotation_refreshes_an_expiring_token(slack) -> None:
    slack.fake.token_rotation = True
    slack.install()
    store = slack.app.extensions["tonehub"].slack_app.installation_store
    bot = store.find_bot(enterprise_id=None, team_id="T0001")
    assert bot.bot_refresh_token
    old = bot.bot_token
    slack.fake.tokens[old]["expires_at"] = time.time() + 60  # about to expire
    bot.bot_token_expires_at = int(time.time()) + 60
    store.save_bot(bot)
    slack.post(message_event(POSITIVE))
    slack.work()
    [call] = slack.fake.calls_to("reactions.add")
    fresh = store.find_bot(enterprise_id=None, team_id="T0001").bot_token
    assert fresh != old and call["auth"] == f"Bearer {fresh}"
    assert [
        c["params"].get("grant_type") for c in slack.fake.calls_to("oauth.v2.access")
    ][-1] == "refresh_token"


def test_enterprise_grid_org_install(slack) -> None:
    slack.fake.install_as = {
        "team": None,
        "enterprise": {"id": "E0ORG", "name": "Org"},
        "is_enterprise_install": True,
        "user": "U0ADMIN",
    }
    ws = slack.install()
    store = slack.app.extensions["tonehub"].slack_app.installation_store
    installation = store.find_installation(
        enterprise_id="E0ORG", team_id=None, is_enterprise_install=True
    )
    assert installation.enterprise_id == "E0ORG" and installation.team_id is None
    # A workspace inside the org meters to the org's Tonehub workspace.
    assert store.workspace_for("E0ORG", "T0INORG") == ws


def test_reaction_emoji_are_configurable_per_channel(slack) -> None:
    slack.install()
    assert "emoji" in command(slack, "help")["text"]
    answer = command(slack, "emoji negative :fire:")["text"]
    assert answer == "Negative messages here get :fire:."
    assert "Use:" in command(slack, "emoji angry :fire:")["text"]
    assert "Use:" in command(slack, "emoji negative :no spaces:")["text"]
    assert "Use:" in command(slack, "emoji negative <script>")["text"]
    slack.post(message_event(NEGATIVE))
    slack.post(message_event(POSITIVE))
    slack.post(message_event(NEGATIVE, channel="C0OTHER"))  # other channel: default
    slack.work()
    names = sorted(
        (c["params"]["channel"], c["params"]["name"])
        for c in slack.fake.calls_to("reactions.add")
    )
    assert names == [
        ("C0OTHER", "red_circle"),
        ("C0SUPPORT", "fire"),
        ("C0SUPPORT", "large_green_circle"),
    ]
    assert "defaults" in command(slack, "emoji reset")["text"]
    slack.post(message_event(NEGATIVE))
    slack.work()
    assert slack.fake.calls_to("reactions.add")[-1]["params"]["name"] == "red_circle"


def test_an_alert_slack_refused_is_tried_again_by_the_next_message(slack) -> None:
    slack.install()
    command(slack, "alerts <#C0ALERTS|alerts> threshold 60")
    slack.fake.fail_next("chat.postMessage", status=500)
    for _ in range(5):  # the 5th message crosses the threshold: the post fails
        slack.post(message_event(NEGATIVE))
    slack.work()
    with slack.app.extensions["tonehub"].sessions() as s:
        assert s.get(SlackChannel, ("T0001", "C0SUPPORT")).last_alert_at is None
    slack.post(message_event(NEGATIVE))
    slack.work()
    tries = [
        c
        for c in slack.fake.calls_to("chat.postMessage")
        if c["params"].get("channel") == "C0ALERTS"
    ]
    assert len(tries) == 2  # refused once, then posted
    with slack.app.extensions["tonehub"].sessions() as s:
        assert s.get(SlackChannel, ("T0001", "C0SUPPORT")).last_alert_at is not None
