"""The manifest matches the code, and Slack markup is normalised for scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.slack.app import BOT_SCOPES
from connectors.slack.markup import normalise

MANIFEST = Path(__file__).resolve().parents[3] / "connectors" / "slack" / "manifest.yml"


def test_manifest_scopes_events_and_urls() -> None:
    m = yaml.safe_load(MANIFEST.read_text())
    assert m["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    events = m["settings"]["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert set(events["bot_events"]) == {
        "message.channels",
        "message.groups",
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    }
    [command] = m["features"]["slash_commands"]
    assert command["command"] == "/sentiment" and command["url"].endswith(
        "/slack/events"
    )
    assert m["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    assert m["features"]["app_home"]["home_tab_enabled"] is True


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<@U024BE7LH> thanks!", "@someone thanks!"),
        ("see <#C024BE7LR|general>", "see #general"),
        ("read <https://x.io/a|the docs> now", "read the docs now"),
        ("bare <https://x.io/a>", "bare link"),
        ("<!here> outage", "@everyone outage"),
        ("love it :heart_eyes: :tada:", "love it love great"),
        ("ugh :rage::skin-tone-2:", "ugh furious"),
        ("meh :sandwich:", "meh"),
        ("fails:\n```Traceback\nError```\nstill", "fails:\nstill"),
        ("run `make test` &amp; wait &lt;3", "run & wait <3"),
    ],
)
def test_normalise(raw: str, clean: str) -> None:
    assert normalise(raw) == clean
