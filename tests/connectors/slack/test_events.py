"""Slack end to end: install, signed events, the worker, write-back, metering."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core.persistence.models import SlackMessage, UsageDaily, Workspace
from tests.conftest import add_ledger_usage
from tests.connectors.slack.conftest import message_event

NEGATIVE = "This is the third outage this week and nobody answers. I am furious."
POSITIVE = "Thank you so much, the fix works perfectly!"


def _db(slack):
    return slack.app.extensions["tonehub"].sessions()


def _usage(slack, ws: str) -> int:
    with _db(slack) as s:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(UsageDaily.count), 0)).where(
                    UsageDaily.workspace_id == ws, UsageDaily.source == "slack"
                )
            )
        )


def test_install_from_slack_creates_a_basic_workspace(slack) -> None:
    ws = slack.install()
    with _db(slack) as s:
        workspace = s.get(Workspace, ws)
        assert workspace.plan == "basic" and "Acme Support" in workspace.name
    bot = slack.app.extensions["tonehub"].slack_app.installation_store.find_bot(
        enterprise_id=None, team_id="T0001"
    )
    assert bot.bot_token in slack.fake.tokens and bot.bot_user_id == "U0BOT"


def test_install_started_from_tonehub_links_that_workspace(slack, keys) -> None:
    ws, _, secret = keys.issue("Tonehub Acme")
    link = slack.client.post(
        "/v1/connectors/slack/install", headers={"Authorization": f"Bearer {secret}"}
    )
    assert link.status_code == 200
    assert slack.install(link.get_json()["url"]) == ws


def test_state_is_single_use_and_checked(slack) -> None:
    import urllib.error
    import urllib.request

    from tests.connectors.slack.conftest import _NoRedirect

    start = slack.client.get("/slack/install")
    try:
        urllib.request.build_opener(_NoRedirect()).open(start.headers["Location"])
    except urllib.error.HTTPError as exc:
        callback = exc.headers["Location"].split("localhost", 1)[1]
    assert slack.client.get(callback).status_code == 200
    replay = slack.client.get(callback)  # the same state again
    assert replay.status_code == 401 and "invalid_state" in replay.get_data(
        as_text=True
    )
    forged = slack.client.get("/slack/oauth_redirect?code=x&state=forged")
    assert forged.status_code in (400, 401)


def test_a_message_is_scored_once_whatever_slack_retries(slack) -> None:
    ws = slack.install()
    payload = message_event(NEGATIVE)
    first = slack.post(payload)
    assert first.status_code == 200
    for n in (1, 2, 3):  # Slack's retries of the same event
        assert slack.post(payload, retry_num=n).status_code == 200
    started = time.monotonic()
    slack.work()
    assert time.monotonic() - started < 5
    reactions = slack.fake.calls_to("reactions.add")
    assert len(reactions) == 1
    assert reactions[0]["params"]["name"] == "red_circle"
    assert reactions[0]["params"]["timestamp"] == payload["event"]["ts"]
    assert _usage(slack, ws) == 1
    with _db(slack) as s:
        row = s.get(SlackMessage, ("T0001", "C0SUPPORT", payload["event"]["ts"]))
        assert row.label == "negative" and row.status == "done"
        assert "U0ALICE" not in row.user_hash and len(row.user_hash) == 64


def test_the_same_message_as_another_event_is_not_scored_again(slack) -> None:
    ws = slack.install()
    payload = message_event(POSITIVE)
    slack.post(payload)
    again = dict(payload, event_id="EvOTHER")  # e.g. delivered under a new id
    slack.post(again)
    slack.work()
    assert len(slack.fake.calls_to("reactions.add")) == 1
    assert _usage(slack, ws) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"subtype": "channel_topic"},
        {"subtype": "bot_message", "bot_id": "B0OTHER"},
        {"bot_id": "B0OTHER"},
        {"user": "U0BOT"},
        {"text": ""},
        {"text": "```print('only code')```"},
        {"channel_type": "im"},
    ],
)
def test_skipped_messages_cost_nothing(slack, extra) -> None:
    ws = slack.install()
    fields = {"text": NEGATIVE, **extra}
    slack.post(message_event(fields.pop("text"), **fields))
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []
    assert _usage(slack, ws) == 0


def test_threads_and_private_channels_are_scored(slack) -> None:
    slack.install()
    slack.post(message_event(POSITIVE, thread_ts="1764700000.000001"))
    slack.post(message_event(POSITIVE, channel="G0PRIVATE", channel_type="group"))
    slack.work()
    assert len(slack.fake.calls_to("reactions.add")) == 2


def test_tampered_stale_and_unsigned_requests_are_refused(slack) -> None:
    ws = slack.install()
    payload = message_event(NEGATIVE)
    assert slack.post(payload, secret="wrong").status_code == 401
    assert slack.post(payload, timestamp=int(time.time()) - 301).status_code == 401
    unsigned = slack.client.post("/slack/events", json=payload)
    assert unsigned.status_code == 401
    slack.work()
    assert slack.fake.calls_to("reactions.add") == [] and _usage(slack, ws) == 0


def test_non_ascii_bodies(slack) -> None:
    slack.install()
    slack.post(message_event("Merci beaucoup, c'est génial ! 🎉 :tada:"))
    slack.work()
    [call] = slack.fake.calls_to("reactions.add")
    assert call["params"]["name"] == "large_green_circle"


def test_url_verification(slack) -> None:
    answer = slack.post(
        {"type": "url_verification", "challenge": "abc123", "token": "legacy"}
    )
    assert answer.status_code == 200 and answer.get_json() == {"challenge": "abc123"}


def test_uninstall_deletes_the_tokens(slack) -> None:
    slack.install()
    store = slack.app.extensions["tonehub"].slack_app.installation_store
    uninstall = message_event("x")
    uninstall["event"] = {"type": "app_uninstalled", "event_ts": "1"}
    assert slack.post(uninstall).status_code == 200
    assert store.find_installation(enterprise_id=None, team_id="T0001") is None
    slack.post(message_event(NEGATIVE))
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []


def test_rate_limited_slack_is_retried_after_retry_after(slack) -> None:
    slack.install()
    slack.fake.fail_next("reactions.add", status=429, retry_after=1)
    slack.post(message_event(NEGATIVE))
    started = time.monotonic()
    slack.work()
    assert len(slack.fake.calls_to("reactions.add")) == 2  # the 429, then the retry
    assert time.monotonic() - started >= 1.0
    assert len(slack.fake.reactions) == 1


def test_quota_exhaustion_stops_scoring_and_tells_the_installer_once(slack) -> None:
    ws = slack.install()

    add_ledger_usage(slack.app, ws, 10_000)
    for text in (NEGATIVE, POSITIVE, NEGATIVE):
        slack.post(message_event(text))
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []
    dms = [
        c
        for c in slack.fake.calls_to("chat.postMessage")
        if c["params"].get("channel") == "U0INSTALL"
    ]
    assert len(dms) == 1 and "quota" in dms[0]["params"]["text"]
    assert _usage(slack, ws) == 0


def test_tokens_revoked_deletes_the_bot_token(slack) -> None:
    slack.install()
    store = slack.app.extensions["tonehub"].slack_app.installation_store
    revoked = message_event("x")
    revoked["event"] = {
        "type": "tokens_revoked",
        "event_ts": "1",
        "tokens": {"bot": ["U0BOT"]},
    }
    assert slack.post(revoked).status_code == 200
    assert store.find_bot(enterprise_id=None, team_id="T0001") is None


def test_make_demo_slack_passes() -> None:
    """The demo: real gunicorn, worker and scheduler against the fake Slack."""
    from tests.conftest import run_demo

    out = run_demo("demo_slack.py")
    assert "reactions in the fake's log: ['red_circle']; texts metered: 1" in out


def test_a_rate_limited_message_is_retried_by_the_worker_scheduler(slack) -> None:
    from rq import Queue, SimpleWorker

    from workers.queues import DEFAULT_QUEUE

    ws = slack.install()
    meter = slack.app.extensions["tonehub"].meter
    from core.plans import PLANS, PlanName

    while meter.admit(ws, PLANS[PlanName.BASIC], 0).admitted:  # use up the burst
        pass
    payload = message_event(NEGATIVE)
    slack.post(payload)
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []
    queue = Queue(DEFAULT_QUEUE, connection=slack.redis)
    job = queue.fetch_job(f"slack-{payload['event_id']}")
    assert job.get_status() == "scheduled"  # RetryLater -> Retry(interval=1)
    time.sleep(2.1)
    SimpleWorker([queue], connection=slack.redis).work(burst=True, with_scheduler=True)
    assert len(slack.fake.calls_to("reactions.add")) == 1
    assert _usage(slack, ws) == 1


def test_message_text_does_not_outlive_the_job(slack) -> None:
    from rq.job import Job

    slack.install()
    payload = message_event("A private complaint about billing")
    slack.post(payload)
    slack.work()
    assert len(slack.fake.calls_to("reactions.add")) == 1
    assert not Job.exists(f"slack-{payload['event_id']}", connection=slack.redis)


def test_oauth_failure_page_escapes_the_reason(slack) -> None:
    page = slack.client.get(
        "/slack/oauth_redirect?error=%3Cscript%3Ealert(1)%3C/script%3E"
    )
    assert b"<script>" not in page.data and b"&lt;script&gt;" in page.data


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("abc", None),
        ("", None),
        ("1796327376.5", None),
        ("9" * 400, None),
        (None, "v0=\u00e9"),
        (None, "v1=" + "0" * 64),
    ],
)
def test_odd_signature_headers_are_401_not_500(slack, timestamp, signature) -> None:
    headers = {
        "X-Slack-Request-Timestamp": timestamp
        if timestamp is not None
        else str(int(time.time())),
        "X-Slack-Signature": signature if signature is not None else "v0=" + "0" * 64,
    }
    response = slack.client.post(
        "/slack/events", data=b"{}", headers=headers, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"text"',
        b"null",
        b"not json",
        b'{"type": "event_callback", "event": "x"}',
        b'{"type": "event_callback", "event": {"type": "message", "channel": 42}}',
        b'{"type": "event_callback", "event": {"type": "message", "user": 7}}',
    ],
)
def test_signed_payloads_of_the_wrong_shape_are_400(slack, body) -> None:
    response = slack.post(body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_events_without_fields_are_skipped_not_crashing(slack) -> None:
    slack.install()
    for missing in ("channel", "ts", "user"):
        payload = message_event(NEGATIVE)
        del payload["event"][missing]
        assert slack.post(payload).status_code == 200
    home = message_event("x")
    home["event"] = {"type": "app_home_opened", "tab": "home", "event_ts": "1"}
    assert slack.post(home).status_code == 200
    unknown = message_event("x")
    unknown["event"] = {"type": "reaction_added", "event_ts": "1"}
    assert slack.post(unknown).status_code == 200
    slack.work()
    assert slack.fake.calls_to("reactions.add") == []


def test_user_token_revocation_keeps_the_install(slack) -> None:
    slack.install()
    store = slack.app.extensions["tonehub"].slack_app.installation_store
    revoked = message_event("x")
    revoked["event"] = {
        "type": "tokens_revoked",
        "event_ts": "1",
        "tokens": {"oauth": ["U0SOMEONE"], "bot": []},
    }
    assert slack.post(revoked).status_code == 200
    assert store.find_bot(enterprise_id=None, team_id="T0001") is not None


def test_reinstalling_keeps_the_teams_workspace(slack) -> None:
    ws = slack.install()
    uninstall = message_event("x")
    uninstall["event"] = {"type": "app_uninstalled", "event_ts": "1"}
    slack.post(uninstall)
    assert slack.install() == ws


def test_slack_usage_alone_records_the_quota_thresholds(slack) -> None:
    """Connector usage goes to the ledger directly, not through the flush;
    crossing 80% of the quota must still be recorded (once)."""
    from core.persistence.models import OutboundEvent, UsageEvent

    ws = slack.install()
    add_ledger_usage(slack.app, ws, 7_999, source="slack")
    slack.post(message_event(POSITIVE, ts="1764700001.000100"))
    slack.post(message_event(NEGATIVE, ts="1764700002.000100"))
    slack.work()
    assert _usage(slack, ws) == 8_001
    with _db(slack) as s:
        events = s.scalars(
            select(UsageEvent).where(UsageEvent.workspace_id == ws)
        ).all()
        assert [(e.threshold, e.quota) for e in events] == [(80, 10_000)]
        outbound = s.scalars(
            select(OutboundEvent.type).where(OutboundEvent.workspace_id == ws)
        ).all()
        assert outbound == ["usage.threshold_reached"]
