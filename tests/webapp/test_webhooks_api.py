"""``/v1/webhooks`` and ``/v1/events`` through the real app: endpoints, the
secret shown once and rotated, the SSRF guard at the door, the delivery log,
redeliver and replay, tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, SimpleWorker

from core.webhooks.events import emit
from tests.conftest import ApiKeyActions
from tests.fakes.webhook_receiver import Answer
from tests.webapp.conftest import check_against_spec
from workers.queues import WEBHOOK_QUEUE, enqueue_webhook_dispatch


@pytest.fixture
def api(jobs_app):
    return jobs_app.test_client()


def _key(app, name: str = "Acme") -> tuple[str, dict[str, str]]:
    ws, _, secret = ApiKeyActions(app).issue(name)
    return ws, {"Authorization": f"Bearer {secret}"}


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


def _work(redis) -> None:
    """What the scheduler's sweep and a worker do: send what is due."""
    enqueue_webhook_dispatch(redis)
    SimpleWorker([Queue(WEBHOOK_QUEUE, connection=redis)], connection=redis).work(
        burst=True
    )


def _hooked(app, api, receiver) -> tuple[str, dict[str, str], dict]:
    """A workspace with an endpoint at the receiver, which knows its secret."""
    ws, auth = _key(app)
    hook = api.post(
        "/v1/webhooks", json={"url": receiver.url + "/in"}, headers=auth
    ).get_json()
    receiver.secrets = [hook["secret"]]
    return ws, auth, hook


def _emit(app, ws: str, kind: str = "usage.threshold_reached") -> str:
    with app.extensions["tonehub"].sessions() as s:
        event = emit(s, ws, kind, {"threshold_percent": 80})
        s.commit()
        return event.id


def test_create_list_change_delete(jobs_app, api) -> None:
    _, auth = _key(jobs_app)
    created = api.post(
        "/v1/webhooks",
        json={
            "url": "https://hooks.example.com/tonehub",
            "event_types": ["job.succeeded", "job.failed"],
            "description": "CRM",
        },
        headers=auth,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    hook = created.get_json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["event_types"] == ["job.failed", "job.succeeded"]
    listed = api.get("/v1/webhooks", headers=auth).get_json()
    assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
    assert "secret" not in listed["webhooks"][0]  # shown once only
    assert "sentiment.alert" in listed["event_types"]
    assert "secret" not in api.get(f"/v1/webhooks/{hook['id']}", headers=auth).json
    changed = api.patch(
        f"/v1/webhooks/{hook['id']}",
        json={"enabled": False, "event_types": []},
        headers=auth,
    )
    assert changed.status_code == 200
    assert changed.get_json()["enabled"] is False
    assert changed.get_json()["event_types"] == []
    rotated = api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=auth)
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["secret"].startswith("whsec_") and new["secret"] != hook["secret"]
    assert new["previous_secret_expires_at"] is not None
    assert api.delete(f"/v1/webhooks/{hook['id']}", headers=auth).status_code == 204
    _error(api.get(f"/v1/webhooks/{hook['id']}", headers=auth), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://127.0.0.2/hook"}, "webhook_url_forbidden"),
        ({"url": "https://10.1.2.3/hook"}, "webhook_url_forbidden"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "webhook_url_forbidden"),
        ({"url": "https://[::1]/hook"}, "webhook_url_forbidden"),
        ({"url": "https://[::ffff:192.168.0.1]/hook"}, "webhook_url_forbidden"),
        ({"url": "http://hooks.example.com/plain"}, "invalid_request"),
        ({"url": "ftp://hooks.example.com/"}, "invalid_request"),
        ({"url": "https://user:pw@hooks.example.com/"}, "invalid_request"),
        ({"url": "not a url"}, "invalid_request"),
        ({"url": "https://hooks.example.com:99999/"}, "invalid_request"),
        ({"url": ""}, "invalid_request"),
        ({}, "invalid_request"),
        (
            {"url": "https://ok.example.com", "event_types": ["job.exploded"]},
            "unknown_event_type",
        ),
        ({"url": "https://ok.example.com", "enabled": "yes"}, "invalid_request"),
    ],
)
def test_bad_endpoints_are_refused(jobs_app, api, body, code) -> None:
    _, auth = _key(jobs_app)
    _error(api.post("/v1/webhooks", json=body, headers=auth), 400, code)
    assert api.get("/v1/webhooks", headers=auth).get_json()["webhooks"] == []


def test_endpoints_are_per_workspace(jobs_app, api) -> None:
    _, mine = _key(jobs_app, "Mine")
    _, theirs = _key(jobs_app, "Theirs")
    hook = api.post(
        "/v1/webhooks", json={"url": "https://a.example.com/h"}, headers=mine
    ).get_json()
    for method, path, body in [
        ("get", f"/v1/webhooks/{hook['id']}", None),
        ("patch", f"/v1/webhooks/{hook['id']}", {"enabled": False}),
        ("delete", f"/v1/webhooks/{hook['id']}", None),
        ("post", f"/v1/webhooks/{hook['id']}/rotate-secret", None),
        ("get", f"/v1/webhooks/{hook['id']}/attempts", None),
    ]:
        kwargs = {"json": body} if body is not None else {}
        _error(getattr(api, method)(path, headers=theirs, **kwargs), 404, "not_found")
    assert api.get("/v1/webhooks", headers=theirs).get_json()["webhooks"] == []
    assert api.get(f"/v1/webhooks/{hook['id']}", headers=mine).status_code == 200


def test_delivery_log_redeliver_and_replay(
    jobs_app,
    api,
    receiver,
    redis,
) -> None:
    ws, auth, hook = _hooked(jobs_app, api, receiver)
    receiver.plan.append(Answer(500, body=b"try later"))
    event_id = _emit(jobs_app, ws)
    # An event from another workspace is never sent here.
    other_ws, _ = _key(jobs_app, "Other")
    other_event = _emit(jobs_app, other_ws)
    assert api.post("/v1/events", headers=auth).status_code == 405  # read-only
    _work(redis)
    log = api.get(f"/v1/webhooks/{hook['id']}/attempts", headers=auth).get_json()
    assert [(a["event_id"], a["status_code"]) for a in log["attempts"]] == [
        (event_id, 500)
    ]
    assert log["attempts"][0]["response_excerpt"] == "try later"
    assert log["attempts"][0]["latency_ms"] >= 0
    assert api.get(f"/v1/webhooks/{hook['id']}", headers=auth).json["failing_since"]
    # Manual redelivery: sent now, same webhook-id, logged as manual.
    again = api.post(
        f"/v1/webhooks/{hook['id']}/events/{event_id}/redeliver", headers=auth
    )
    assert again.status_code == 202
    _work(redis)
    assert [d.msg_id for d in receiver.deliveries] == [event_id, event_id]
    assert all(d.verified for d in receiver.deliveries)
    log = api.get(f"/v1/webhooks/{hook['id']}/attempts", headers=auth).json
    assert [(a["status_code"], a["manual"]) for a in log["attempts"]] == [
        (200, True),
        (500, False),
    ]
    assert (
        api.get(f"/v1/webhooks/{hook['id']}", headers=auth).json["failing_since"]
        is None
    )
    _error(
        api.post(
            f"/v1/webhooks/{hook['id']}/events/{other_event}/redeliver", headers=auth
        ),
        404,
        "not_found",
    )
    # Replay of a time range sends every event of it again.
    now = datetime.now(UTC)
    replay = api.post(
        f"/v1/webhooks/{hook['id']}/replay",
        json={
            "since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(minutes=1)).isoformat(),
        },
        headers=auth,
    )
    assert replay.status_code == 202 and replay.get_json()["queued"] == 1
    _work(redis)
    assert [d.msg_id for d in receiver.deliveries] == [event_id] * 3
    reversed_range = api.post(
        f"/v1/webhooks/{hook['id']}/replay",
        json={"since": now.isoformat(), "until": (now - timedelta(1)).isoformat()},
        headers=auth,
    )
    _error(reversed_range, 400, "invalid_request")
    events = api.get("/v1/events", headers=auth).get_json()["events"]
    assert [e["id"] for e in events] == [event_id]


def test_a_disabled_endpoint_gets_what_waited_when_enabled(
    jobs_app,
    api,
    receiver,
    redis,
) -> None:
    ws, auth, hook = _hooked(jobs_app, api, receiver)
    receiver.plan.append(Answer(410))
    first = _emit(jobs_app, ws)
    _work(redis)
    shown = api.get(f"/v1/webhooks/{hook['id']}", headers=auth).get_json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    second = _emit(jobs_app, ws, "job.failed")
    _work(redis)
    assert [d.msg_id for d in receiver.deliveries] == [first]  # the 410 answer
    enabled = api.patch(
        f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=auth
    )
    assert enabled.get_json()["disabled_reason"] is None
    _work(redis)
    assert [d.msg_id for d in receiver.deliveries] == [first, second]


def test_webhook_answers_match_the_spec(jobs_app, api) -> None:
    _, auth = _key(jobs_app)
    spec = api.get("/v1/openapi.json").get_json()
    created = api.post(
        "/v1/webhooks", json={"url": "https://a.example.com/h"}, headers=auth
    )
    check_against_spec(spec, "/v1/webhooks", "post", created)
    hook_id = created.get_json()["id"]
    check_against_spec(
        spec, "/v1/webhooks", "get", api.get("/v1/webhooks", headers=auth)
    )
    path = "/v1/webhooks/{endpoint_id}"
    check_against_spec(
        spec, path, "get", api.get(f"/v1/webhooks/{hook_id}", headers=auth)
    )
    check_against_spec(
        spec,
        path + "/attempts",
        "get",
        api.get(f"/v1/webhooks/{hook_id}/attempts", headers=auth),
    )
    check_against_spec(spec, "/v1/events", "get", api.get("/v1/events", headers=auth))
    bad = api.post("/v1/webhooks", json={"url": "https://10.0.0.1/"}, headers=auth)
    check_against_spec(spec, "/v1/webhooks", "post", bad)
