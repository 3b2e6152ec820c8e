"""Request ids, the JSON request log, /metrics and its access rule; and a
scan of every log line for a planted text and a planted key."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, SimpleWorker

from core.logs import JsonFormatter
from tests.conftest import _close_app, _make_app
from workers.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE

PLANTED_TEXT = "Zebra-umbrella-7731 says the refund is appalling"


@pytest.fixture
def logs():
    """Everything any logger writes at DEBUG and up, as the JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_id_is_returned_and_kept_when_sane(client) -> None:
    first = client.get("/healthz")
    rid = first.headers["X-Request-Id"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert client.get("/healthz").headers["X-Request-Id"] != rid
    kept = client.get("/healthz", headers={"X-Request-Id": "trace-abc-12345"})
    assert kept.headers["X-Request-Id"] == "trace-abc-12345"
    # Junk (header injection, huge) is replaced, not echoed.
    for junk in ("a b c d e f g h", "x" * 500, "<script>"):
        got = client.get("/healthz", headers={"X-Request-Id": junk})
        assert got.headers["X-Request-Id"] != junk
    # Errors carry one too.
    assert client.get("/nope").headers["X-Request-Id"]


def test_one_json_line_per_request(app, client, keys, logs) -> None:
    ws, _, secret = keys.issue()
    r = client.post(
        "/v1/sentiment/batch",
        json={"texts": ["Great!", "Awful.", ""]},
        headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "req-0001-xyz"},
    )
    assert r.status_code == 200
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    request_lines = [x for x in lines if x["logger"] == "tonehub.request"]
    [line] = [x for x in request_lines if x.get("request_id") == "req-0001-xyz"]
    assert line["workspace_id"] == ws
    assert line["route"] == "/v1/sentiment/batch" and line["method"] == "POST"
    assert line["status"] == 200 and line["units"] == 2  # the empty text is free
    assert 0 < line["latency_ms"] < 60_000
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")


def test_no_text_and_no_key_in_any_log_line(
    app, client, keys, logs, redis, scorer
) -> None:
    """Every path a text or a key can take: scored, refused, bad JSON, a bad
    key, a batch job run by a worker, the dashboard playground."""
    _, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    bad_key = "th_live_" + "Q" * 32
    calls = [
        ("post", "/v1/sentiment", {"json": {"text": PLANTED_TEXT}, "headers": auth}),
        (
            "post",
            "/v1/sentiment",
            {"json": {"text": PLANTED_TEXT, "explain": True, "sentences": True}},
        ),
        ("post", "/v1/sentiment", {"json": {"text": PLANTED_TEXT * 9000}}),
        ("post", "/v1/sentiment/batch", {"json": {"texts": [PLANTED_TEXT, 7]}}),
        ("post", "/v1/sentiment", {"data": '{"text": "' + PLANTED_TEXT}),
        ("post", "/v1/sentiment", {"json": {"text": PLANTED_TEXT, "model": "x"}}),
        ("post", "/v1/jobs", {"json": {"texts": [PLANTED_TEXT] * 3}}),
    ]
    for method, path, kw in calls:
        headers = {**auth, "Content-Type": "application/json", **kw.pop("headers", {})}
        getattr(client, method)(path, headers=headers, **kw)
    for header in ({"Authorization": f"Bearer {bad_key}"}, {"X-API-Key": bad_key}):
        r = client.post("/v1/sentiment", json={"text": PLANTED_TEXT}, headers=header)
        assert r.status_code == 401
    from core.config import Settings
    from workers import runtime

    runtime.configure(Settings.from_mapping(app.config), scorer=scorer)
    queues = [Queue(n, connection=redis) for n in (DEFAULT_QUEUE, WEBHOOK_QUEUE)]
    SimpleWorker(queues, connection=redis).work(burst=True)
    out = logs.getvalue()
    assert "tonehub.request" in out and "Job job_" in out  # the log did fill
    for planted in (PLANTED_TEXT, "Zebra-umbrella", secret, secret[8:], bad_key):
        assert planted not in out, planted
    for line in out.splitlines():
        json.loads(line)  # every line is one JSON object


def test_metrics_count_requests_inference_admissions(app, client, keys) -> None:
    _, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    before = _samples(client.get("/metrics").get_data(as_text=True))
    for i in range(3):
        r = client.post("/v1/sentiment", json={"text": f"Nice one {i}"}, headers=auth)
        assert r.status_code == 200
    client.post("/v1/sentiment", json={"text": "Nice one 0"}, headers=auth)  # cached
    client.post("/v1/sentiment", json={"text": ""}, headers=auth)  # 400
    page = client.get("/metrics")
    assert page.status_code == 200 and page.content_type.startswith("text/plain")
    after = _samples(page.get_data(as_text=True))

    def delta(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    route = {"route": "/v1/sentiment", "method": "POST"}
    assert delta("tonehub_http_requests_total", status="200", **route) == 4
    assert delta("tonehub_http_requests_total", status="400", **route) == 1
    assert delta("tonehub_http_request_duration_seconds_count", **route) == 5
    model = {"model": app.extensions["tonehub"].scoring.registry.default}
    assert delta("tonehub_model_inference_seconds_count", **model) == 3  # 1 cached
    assert delta("tonehub_model_batch_size_sum", **model) == 3
    assert delta("tonehub_admissions_total", outcome="admitted") == 5
    hits, misses = (
        _value(after, "tonehub_cache_hits_total"),
        _value(after, "tonehub_cache_misses_total"),
    )
    assert hits >= 1 and misses >= 3
    ratio = _value(after, "tonehub_cache_hit_ratio")
    assert ratio == pytest.approx(hits / (hits + misses))
    assert ("tonehub_queue_depth", (("queue", "default"),)) in after
    assert ("tonehub_slack_installations", ()) in after


def test_admission_refusals_are_counted(app, client, keys) -> None:
    _, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    before = _samples(client.get("/metrics").get_data(as_text=True))
    statuses = [
        client.get("/v1/models", headers=auth).status_code for _ in range(25)
    ]  # basic: bursts of 20
    assert statuses.count(429) >= 1
    after = _samples(client.get("/metrics").get_data(as_text=True))
    refused = _value(after, "tonehub_admissions_total", outcome="rate_limited") - (
        _value(before, "tonehub_admissions_total", outcome="rate_limited")
    )
    assert refused == statuses.count(429)


def test_metrics_are_not_public(tmp_path, redis, redis_url, scorer) -> None:
    app = _make_app(
        tmp_path,
        redis_url,
        scorer,
        METRICS_ALLOW="10.0.0.0/8",
        METRICS_TOKEN="scrape-token-1234",
    )
    try:
        client = app.test_client()

        def get(addr: str, **headers: str) -> int:
            return client.get(
                "/metrics", environ_base={"REMOTE_ADDR": addr}, headers=headers
            ).status_code

        assert get("127.0.0.1") == 200
        assert get("::1") == 200
        assert get("::ffff:127.0.0.1") == 200  # a dual-stack socket's loopback
        assert get("::ffff:203.0.113.9") == 404
        assert get("10.1.2.3") == 200  # the allowed pod network
        assert get("203.0.113.9") == 404  # anyone else: as if it did not exist
        assert get("192.168.1.5") == 404
        # Through a proxy (an ingress) even a loopback peer is refused...
        assert get("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"}) == 404
        assert get("10.1.2.3", Forwarded="for=203.0.113.9") == 404
        for header in ("X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto", "Via"):
            assert get("127.0.0.1", **{header: "x"}) == 404, header
        # ...unless the caller holds the token.
        token = {"Authorization": "Bearer scrape-token-1234"}
        assert get("203.0.113.9", **token) == 200
        assert get("203.0.113.9", Authorization="Bearer wrong") == 404
        body = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert body.get_json()["error"]["code"] == "not_found"
    finally:
        _close_app(app)
    # The default: loopback only.
    (tmp_path / "d").mkdir()
    default = _make_app(tmp_path / "d", redis_url, scorer)
    try:
        c = default.test_client()
        assert (
            c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code
            == 404
        )
    finally:
        _close_app(default)


def test_metrics_route_is_not_in_the_openapi_document(client) -> None:
    spec = client.get("/v1/openapi.json").get_json()
    assert "/metrics" not in spec["paths"]


def test_a_bad_metrics_allow_list_stops_the_start(tmp_path, redis_url, scorer) -> None:
    with pytest.raises(ValueError, match="TONEHUB_METRICS_ALLOW"):
        _make_app(tmp_path, redis_url, scorer, METRICS_ALLOW="10.0.0.0/8,garbage")


def test_callers_cannot_mint_metric_labels_or_bad_request_ids(client) -> None:
    for method in ("QWERTYA", "QWERTYB"):
        r = client.open("/v1/sentiment", method=method)
        assert r.status_code == 405
    # A trailing newline would pass a "$"-anchored pattern (clients refuse to
    # send one, gunicorn too; the check must not rely on that).
    from webapp.observability import _REQUEST_ID

    assert _REQUEST_ID.fullmatch("abcdefgh\n") is None
    assert _REQUEST_ID.fullmatch("abcdefgh") is not None
    body = client.get("/metrics").get_data(as_text=True)
    assert "QWERTY" not in body
    assert 'method="other"' in body


def test_library_debug_logs_stay_off(monkeypatch) -> None:
    import logging

    from core.logs import QUIET_LIBRARIES, configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("json", "DEBUG")
        for name in QUIET_LIBRARIES:
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
        with pytest.raises(ValueError):
            configure_logging("xml", "INFO")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)
