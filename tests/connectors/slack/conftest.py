"""The app with the Slack connector on, against the fake Slack; helpers to
install, to send signed events and to run the worker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from core.config import Settings
from tests.conftest import _close_app, _make_app
from tests.fakes.slack import SIGNING_SECRET, FakeSlack, signed_headers
from workers import runtime
from workers.queues import DEFAULT_QUEUE


@pytest.fixture
def fake_slack():
    fake = FakeSlack()
    fake.start()
    yield fake
    fake.stop()


def slack_settings(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CLIENT_ID": fake.client_id,
        "SLACK_CLIENT_SECRET": fake.client_secret,
        "SLACK_API_URL": fake.api_url,
        "PUBLIC_URL": "http://localhost",
    }


@pytest.fixture
def slack_app(tmp_path: Path, redis: Redis, redis_url: str, scorer, fake_slack):
    application = _make_app(tmp_path, redis_url, scorer, **slack_settings(fake_slack))
    runtime.configure(Settings.from_mapping(application.config), scorer=scorer)
    yield application
    _close_app(application)


@dataclass
class SlackActions:
    app: Any
    fake: FakeSlack
    client: Any
    redis: Redis

    def install(self, link: str | None = None) -> str:
        """Run the OAuth install as a browser would; returns the workspace id."""
        path = (
            urlsplit(link).path + "?" + urlsplit(link).query
            if link
            else "/slack/install"
        )
        start = self.client.get(path)
        assert start.status_code == 302, start.get_data(as_text=True)
        authorize = start.headers["Location"]
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            opener.open(authorize)
            raise AssertionError("the fake did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
            back = exc.headers["Location"]
        parts = urlsplit(back)
        done = self.client.get(f"{parts.path}?{parts.query}")
        assert done.status_code == 200, done.get_data(as_text=True)
        team = self.fake.install_as["team"]
        ent = self.fake.install_as["enterprise"]
        store = self.app.extensions["tonehub"].slack_app.installation_store
        return store.workspace_for(
            ent["id"] if ent else None, team["id"] if team else None
        )

    def post(
        self,
        payload: dict | bytes,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        content_type: str = "application/json",
        path: str = "/slack/events",
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = signed_headers(
            body,
            secret=secret,
            retry_num=retry_num,
            timestamp=timestamp,
            content_type=content_type,
        )
        return self.client.post(path, data=body, headers=headers)

    def work(self) -> None:
        SimpleWorker(
            [Queue(DEFAULT_QUEUE, connection=self.redis)], connection=self.redis
        ).work(burst=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def slack(slack_app, fake_slack, redis) -> SlackActions:
    return SlackActions(slack_app, fake_slack, slack_app.test_client(), redis)


_counter = iter(range(1, 10**9))


def message_event(
    text: str,
    *,
    team: str = "T0001",
    channel: str = "C0SUPPORT",
    user: str = "U0ALICE",
    ts: str | None = None,
    **extra,
) -> dict:
    """An Events API envelope of a channel message, as Slack sends it."""
    n = next(_counter)
    ts = ts or f"1764700000.{n:06d}"
    event = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "team": team,
        "channel_type": "channel",
        "event_ts": ts,
        **extra,
    }
    return {
        "token": "legacy",
        "team_id": team,
        "api_app_id": "A0TONEHUB",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{n:08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "team_id": team,
                "user_id": "U0BOT",
                "is_bot": True,
                "enterprise_id": None,
                "is_enterprise_install": False,
            }
        ],
    }
