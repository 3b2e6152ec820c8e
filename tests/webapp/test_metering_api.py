"""Plans, quotas, rate limits, headers and /v1/usage through the real app."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.accounts import hash_key
from core.metering import period_end
from tests.conftest import add_ledger_usage
from tests.webapp.conftest import check_against_spec

TEXTS = ["Great support, thank you!", "This is broken again.", "Meeting at 3pm."]


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()["error"]
    assert body["code"] == code
    return body


def _ledger(app, workspace_id: str, units: int) -> None:
    """Usage from earlier this month, already in the database."""
    add_ledger_usage(app, workspace_id, units)


def test_every_v1_answer_carries_the_limits(client, auth) -> None:
    response = client.post("/v1/sentiment", json={"text": TEXTS[0]}, headers=auth)
    assert response.status_code == 200
    h = response.headers
    assert h["RateLimit-Policy"] == '"rate";q=20;w=2'
    assert re.fullmatch(r'"rate";r=19;t=[01]', h["RateLimit"])
    assert (h["RateLimit-Limit"], h["RateLimit-Remaining"]) == ("20", "19")
    assert h["RateLimit-Reset"] in ("0", "1")
    assert (h["X-Quota-Limit"], h["X-Quota-Remaining"], h["X-Quota-Used"]) == (
        "10000",
        "9999",
        "1",
    )
    reset = period_end(datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert h["X-Quota-Reset"] == reset
    for path in ("/v1/models", "/v1/usage", "/v1/billing"):
        got = client.get(path, headers=auth)
        assert got.status_code == 200 and "RateLimit" in got.headers, path
        assert got.headers["X-Quota-Used"] == "1", path  # reading costs nothing
    bad = client.post("/v1/sentiment", json={"text": ""}, headers=auth)
    assert bad.status_code == 400 and bad.headers["X-Quota-Used"] == "1"


def test_a_batch_costs_its_texts_and_failed_items_are_refunded(client, auth) -> None:
    response = client.post(
        "/v1/sentiment/batch", json={"texts": [*TEXTS, "", None]}, headers=auth
    )
    assert response.status_code == 200
    assert response.headers["X-Quota-Used"] == "3"
    assert response.headers["X-Quota-Remaining"] == "9997"
    usage = client.get("/v1/usage", headers=auth).get_json()
    assert usage["period"]["used"] == 3
    today = usage["daily"][-1]
    assert today["total"] == 3 and today["by_source"] == {"api": 3}
    assert today["by_label"] == {"positive": 1, "negative": 1, "neutral": 1}


def test_basic_is_limited_to_10000_a_month(app, client, keys) -> None:
    ws, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    _ledger(app, ws, 9_990)  # Redis has never seen it: seeded from the ledger
    over = client.post("/v1/sentiment/batch", json={"texts": ["ok"] * 11}, headers=auth)
    error = _error(over, 429, "quota_exceeded")
    assert "Basic" in error["message"] and "10,000" in error["message"]
    assert int(over.headers["Retry-After"]) == pytest.approx(
        (period_end(datetime.now(UTC)) - datetime.now(UTC)).total_seconds(), abs=5
    )
    assert over.headers["X-Quota-Remaining"] == "10"
    fits = client.post("/v1/sentiment/batch", json={"texts": ["ok"] * 10}, headers=auth)
    assert fits.status_code == 200 and fits.headers["X-Quota-Remaining"] == "0"
    _error(
        client.post("/v1/sentiment", json={"text": "x"}, headers=auth),
        429,
        "quota_exceeded",
    )
    assert client.get("/v1/usage", headers=auth).status_code == 200


def test_basic_is_limited_to_10_requests_a_second(client, auth) -> None:
    statuses = [client.get("/v1/models", headers=auth) for _ in range(30)]
    ok = [r for r in statuses if r.status_code == 200]
    limited = [r for r in statuses if r.status_code == 429]
    assert 20 <= len(ok) <= 24  # the burst, plus what trickled in meanwhile
    assert limited, "no request was rate limited"
    body = _error(limited[0], 429, "rate_limited")
    assert "10 requests a second" in body["message"]
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].headers["RateLimit-Remaining"] == "0"


def test_usage_report_range_and_isolation(app, client, keys) -> None:
    ws_a, key_a, secret_a = keys.issue("A")
    _, _, secret_b = keys.issue("B")
    a = {"Authorization": f"Bearer {secret_a}"}
    b = {"Authorization": f"Bearer {secret_b}"}
    client.post("/v1/sentiment/batch", json={"texts": TEXTS}, headers=a)
    report = client.get("/v1/usage", headers=a).get_json()
    assert report["by_api_key"] == {key_a: 3}
    other = client.get("/v1/usage", headers=b).get_json()
    assert other["period"]["used"] == 0 and other["total"] == 0
    assert other["by_api_key"] == {}
    today = datetime.now(UTC).date()
    week = client.get(
        f"/v1/usage?from={today - timedelta(days=6)}&to={today}", headers=a
    ).get_json()
    assert [d["date"] for d in week["daily"]][0] == str(today - timedelta(days=6))
    assert len(week["daily"]) == 7 and week["total"] == 3
    _error(
        client.get(f"/v1/usage?from={today}&to={today - timedelta(1)}", headers=a),
        400,
        "invalid_request",
    )
    _error(
        client.get("/v1/usage?from=2020-01-01&to=2026-01-01", headers=a),
        400,
        "invalid_request",
    )
    _error(client.get("/v1/usage?from=yesterday", headers=a), 400, "invalid_request")


def test_usage_survives_a_cold_redis(app, client, auth, runner) -> None:
    client.post("/v1/sentiment/batch", json={"texts": TEXTS}, headers=auth)
    assert "Flushed 3 texts" in runner.invoke(args=["flush-usage"]).output
    app.extensions["tonehub"].redis.flushdb()
    usage = client.get("/v1/usage", headers=auth).get_json()
    assert usage["period"]["used"] == 3 and usage["daily"][-1]["total"] == 3
    response = client.post("/v1/sentiment", json={"text": TEXTS[0]}, headers=auth)
    assert response.headers["X-Quota-Used"] == "4"


def test_unflushed_and_flushed_usage_add_up(app, client, auth, runner) -> None:
    client.post("/v1/sentiment/batch", json={"texts": TEXTS}, headers=auth)
    runner.invoke(args=["flush-usage"])
    client.post("/v1/sentiment", json={"text": TEXTS[1]}, headers=auth)
    usage = client.get("/v1/usage", headers=auth).get_json()
    assert usage["total"] == 4 and usage["period"]["used"] == 4
    assert usage["daily"][-1]["by_label"]["negative"] == 2


def test_set_plan_changes_the_limits(app, client, keys, runner) -> None:
    ws, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    result = runner.invoke(args=["set-plan", ws, "pro"])
    assert result.exit_code == 0, result.output
    h = client.post("/v1/sentiment", json={"text": "hi"}, headers=auth).headers
    assert h["RateLimit-Limit"] == "400" and "X-Quota-Limit" not in h
    assert client.get("/v1/usage", headers=auth).get_json()["period"]["limit"] is None
    assert runner.invoke(args=["set-plan", ws, "gold"]).exit_code != 0
    assert runner.invoke(args=["set-plan", "ws_missing", "plus"]).exit_code != 0


def test_responses_match_the_spec(client, auth, spec) -> None:
    check_against_spec(spec, "/v1/usage", "get", client.get("/v1/usage", headers=auth))
    check_against_spec(
        spec, "/v1/billing", "get", client.get("/v1/billing", headers=auth)
    )
    for _ in range(25):
        last = client.get("/v1/models", headers=auth)
    check_against_spec(spec, "/v1/models", "get", last)
    assert last.status_code == 429


def test_redis_down_fails_closed_with_503(app, client, auth) -> None:
    from redis import Redis

    from core.metering import Meter

    ext = app.extensions["tonehub"]
    dead = Redis(host="127.0.0.1", port=1, socket_timeout=0.2)
    ext.meter, ext.redis = Meter(dead, ext.sessions), dead
    response = client.post("/v1/sentiment", json={"text": "hi"}, headers=auth)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"


def test_auth_cache_follows_revocation_and_plan_changes(app, client, keys, runner):
    ws, key_id, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=auth).headers["RateLimit-Limit"] == "20"
    ext = app.extensions["tonehub"]
    assert ext.redis.exists(f"th:auth:{hash_key(secret)}")  # now served from Redis
    assert runner.invoke(args=["set-plan", ws, "plus"]).exit_code == 0
    assert client.get("/v1/models", headers=auth).headers["RateLimit-Limit"] == "100"
    assert runner.invoke(args=["revoke-key", ws, key_id]).exit_code == 0
    assert client.get("/v1/models", headers=auth).status_code == 401


def test_invalid_items_never_count_against_the_quota(app, client, keys) -> None:
    ws, _, secret = keys.issue()
    auth = {"Authorization": f"Bearer {secret}"}
    _ledger(app, ws, 9_951)  # 49 left
    mixed = client.post(
        "/v1/sentiment/batch", json={"texts": ["ok"] * 49 + ["", None]}, headers=auth
    )
    assert mixed.status_code == 200, mixed.get_data(as_text=True)
    assert mixed.headers["X-Quota-Remaining"] == "0"
    # At zero, a bad request is still told what is wrong with it.
    for body, code in (
        ({"text": ""}, "text_empty"),
        ({"text": "hi", "model": "nope"}, "unknown_model"),
        ({"text": " ".join(["word"] * 70), "explain": True}, "explain_too_long"),
    ):
        _error(client.post("/v1/sentiment", json=body, headers=auth), 400, code)
    _error(
        client.post("/v1/sentiment", json={"text": "ok"}, headers=auth),
        429,
        "quota_exceeded",
    )
    failed = client.post(
        "/v1/sentiment/batch", json={"texts": ["", None]}, headers=auth
    )
    assert failed.status_code == 200
    assert [r["error"]["code"] for r in failed.get_json()["results"]] == [
        "text_empty",
        "invalid_request",
    ]


def test_usage_dates_are_strict(client, auth) -> None:
    for query in (
        "from=20261201",
        "from=2026-W49-1",
        "to=2026-12-01T00:00",
        "from=2026-12-01&from=2026-12-02",
    ):
        _error(client.get(f"/v1/usage?{query}", headers=auth), 400, "invalid_request")
    error = _error(
        client.get("/v1/usage?to=2020-01-01", headers=auth), 400, "invalid_request"
    )
    assert error["field"] == "to"


def test_usage_range_far_ahead_is_refused(client, auth) -> None:
    for query in ("from=9999-12-01&to=9999-12-31", "from=2026-12-01&to=2099-01-01"):
        error = _error(
            client.get(f"/v1/usage?{query}", headers=auth), 400, "invalid_request"
        )
        assert error["field"] == "to"


def test_cli_finds_the_embedded_redis_of_make_run(tmp_path, redis_url) -> None:
    from webapp import create_app

    if not redis_url.startswith("unix://"):
        pytest.skip("needs the embedded (unix socket) Redis")
    (tmp_path / "redis.url").write_text(redis_url)
    app = create_app({"VAR_DIR": str(tmp_path), "DATABASE_URL": "sqlite://"})
    assert app.extensions["tonehub"].settings.redis_url == redis_url
    (tmp_path / "redis.url").write_text("unix:///nonexistent/redis.socket?db=0")
    app = create_app({"VAR_DIR": str(tmp_path), "DATABASE_URL": "sqlite://"})
    assert app.extensions["tonehub"].settings.redis_url == "redis://127.0.0.1:6379/0"
