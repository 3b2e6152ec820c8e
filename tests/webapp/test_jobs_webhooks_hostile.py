"""Hostile input to /v1/jobs and /v1/webhooks, on SQLite and PostgreSQL:
every answer a 4xx (or a clean per-item error), never a 500; the delivery
worker survives odd URLs and answers; the whole attempt is time-bounded."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from core.config import Settings
from core.jobs import runner
from core.persistence.db import make_engine
from core.persistence.models import BatchJobItem, WebhookAttempt
from core.webhooks import transport
from core.webhooks.events import emit
from tests.conftest import ApiKeyActions, _close_app, _make_app, _truncate
from tests.fakes.webhook_receiver import Answer, WebhookReceiver
from workers import runtime
from workers.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE, enqueue_webhook_dispatch


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hostile_app(request, tmp_path, redis, redis_url, scorer):
    extra = {"SECRET_KEY": "hostile", "WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        _truncate(engine)
        engine.dispose()
        extra["DATABASE_URL"] = url
    app = _make_app(tmp_path, redis_url, scorer, **extra)
    runtime.configure(Settings.from_mapping(app.config), scorer=scorer)
    yield app
    runtime.get().close()
    _close_app(app)


@pytest.fixture
def auth(hostile_app) -> dict[str, str]:
    _, _, secret = ApiKeyActions(hostile_app).issue()
    return {"Authorization": f"Bearer {secret}"}


def _work(redis) -> None:
    queues = [Queue(n, connection=redis) for n in (DEFAULT_QUEUE, WEBHOOK_QUEUE)]
    SimpleWorker(queues, connection=redis).work(burst=True)


def _code(response) -> tuple[int, str]:
    body = response.get_json() or {}
    return response.status_code, body.get("error", {}).get("code", "")


def test_nul_and_bad_unicode_in_job_input(hostile_app, auth, redis) -> None:
    client = hostile_app.test_client()
    # NUL in a text is dropped (no tokens, and the database cannot hold it).
    ok = client.post(
        "/v1/jobs", json={"texts": ["gre\x00at job", "\x00"]}, headers=auth
    )
    assert ok.status_code == 202, ok.get_data(as_text=True)
    _work(redis)
    results = client.get(f"/v1/jobs/{ok.json['id']}/results", headers=auth).json
    assert results["results"][0]["label"] in ("positive", "neutral", "negative")
    assert results["results"][1]["error"]["code"] == "text_empty"
    # A null text is one bad item, not a refused job.
    null = client.post("/v1/jobs", json={"texts": ["fine", None]}, headers=auth)
    assert null.status_code == 202 and null.json["units"]["reserved"] == 1
    # Ids are echoed back: NUL, control characters and lone surrogates are refused.
    for bad in ("x\x00", "a\nb"):
        r = client.post("/v1/jobs", json={"texts": ["hi"], "ids": [bad]}, headers=auth)
        assert _code(r) == (400, "invalid_request"), r.get_data(as_text=True)
    r = client.post(
        "/v1/jobs",
        data=b'{"texts": ["hi"], "ids": ["\\ud800"]}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert _code(r) == (400, "invalid_request")
    csv = io.BytesIO(b"text,id\nhel\x00lo,1\nok,\x002\n")
    r = client.post(
        "/v1/jobs",
        data={"file": (csv, "t.csv")},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert _code(r) == (400, "invalid_request")
    dup = io.BytesIO(b"text,text,id\na,b,1\n")
    r = client.post(
        "/v1/jobs",
        data={"file": (dup, "t.csv")},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert _code(r) == (400, "invalid_file")


def test_odd_ids_and_offsets_are_4xx(hostile_app, auth, redis) -> None:
    client = hostile_app.test_client()
    job = client.post("/v1/jobs", json={"texts": ["a", "b"]}, headers=auth).json
    for path in (
        "/v1/jobs/%00",
        "/v1/jobs/job_%00/results",
        "/v1/webhooks/%00",
        "/v1/webhooks/%00/attempts",
    ):
        assert client.get(path, headers=auth).status_code == 404, path
    assert client.delete("/v1/jobs/%00", headers=auth).status_code == 404
    # The same on the dashboard (every surface refuses them before a lookup).
    from tests.webapp.test_dashboard import Browser

    person = Browser(hostile_app)
    person.signup("nul@example.com")
    for path in ("/dashboard/webhooks/%00", "/dashboard/keys/%00/revoke"):
        page = person.client.get(path)
        assert page.status_code == 404 and "text/html" in page.content_type, path
    for query in ("offset=9223372036854775807", "offset=2147483647"):
        r = client.get(f"/v1/jobs/{job['id']}/results?{query}", headers=auth)
        assert _code(r) == (400, "invalid_request"), query
    hook = client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=auth
    ).json
    r = client.get(
        f"/v1/webhooks/{hook['id']}/attempts?before=99999999999999999999",
        headers=auth,
    )
    assert _code(r) == (400, "invalid_request")
    for body in (
        {"url": "https://example.com/\x00"},
        {"url": "https://example.com/", "description": "a\x00b"},
    ):
        r = client.post("/v1/webhooks", json=body, headers=auth)
        assert _code(r) == (400, "invalid_request"), body


def test_a_cancelled_job_pages_end_where_its_results_end(hostile_app, auth) -> None:
    client = hostile_app.test_client()
    job = client.post("/v1/jobs", json={"texts": ["a"] * 300}, headers=auth).json
    assert client.delete(f"/v1/jobs/{job['id']}", headers=auth).status_code == 200
    page = client.get(f"/v1/jobs/{job['id']}/results", headers=auth).json
    assert page["results"] == [] and page["next_offset"] is None


def test_iri_urls_are_encoded_and_odd_answers_are_logged(
    hostile_app, auth, redis
) -> None:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        client = hostile_app.test_client()
        hook = client.post(
            "/v1/webhooks", json={"url": receiver.url + "/café?q=ü"}, headers=auth
        )
        assert hook.status_code == 201
        assert hook.json["url"] == receiver.url + "/caf%C3%A9?q=%C3%BC"
        receiver.secrets = [hook.json["secret"]]
        receiver.plan.append(Answer(503, headers={"Retry-After": "²"}))
        with hostile_app.extensions["tonehub"].sessions() as s:
            from core.persistence.models import WebhookEndpoint

            owner = s.get(WebhookEndpoint, hook.json["id"]).workspace_id
            emit(s, owner, "job.succeeded", {"job_id": "job_x"})
            s.commit()
        enqueue_webhook_dispatch(redis)
        _work(redis)
        assert len(receiver.deliveries) == 1
        with hostile_app.extensions["tonehub"].sessions() as s:
            attempts = s.scalars(select(WebhookAttempt)).all()
        assert [a.status_code for a in attempts] == [503]
        assert not Queue(WEBHOOK_QUEUE, connection=redis).failed_job_registry.count
    finally:
        receiver.stop()


def test_a_dripping_receiver_is_cut_at_the_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"X-Drip: 1\r\n")
            except OSError:
                break
            time.sleep(0.3)
        conn.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    result = transport.post(
        f"http://127.0.0.1:{port}/",
        b"{}",
        {},
        allow_hosts=["127.0.0.1"],
        timeout=2.0,
    )
    took = time.monotonic() - started
    stop.set()
    server.close()
    assert result.status is None and result.error == "timeout"
    assert 1.9 < took < 4.0


def test_long_texts_are_chunked_by_characters(hostile_app, auth, redis) -> None:
    """A chunk of long texts stays short, so a live run keeps its lease."""
    client = hostile_app.test_client()
    texts = ["word " * 12_000] * 3 + ["short"]  # 60,000 characters each
    job = client.post("/v1/jobs", json={"texts": texts}, headers=auth).json
    seen: list[int] = []
    original = runner._within_budget

    def spy(items):
        kept = original(items)
        seen.append(len(kept))
        return kept

    runner._within_budget = spy
    try:
        _work(redis)
    finally:
        runner._within_budget = original
    assert seen[:3] == [1, 1, 2]  # 60k, 60k, then 60k + "short"
    body = client.get(f"/v1/jobs/{job['id']}", headers=auth).json
    assert body["status"] == "succeeded" and body["progress"]["scored"] == 4
    with hostile_app.extensions["tonehub"].sessions() as s:
        stored = s.scalars(select(BatchJobItem.result)).all()
    assert len(stored) == 4 and all(stored)
