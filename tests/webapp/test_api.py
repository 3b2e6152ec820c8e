"""Every /v1 route and every error code, through the real app."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from core.config import DEFAULT_MODEL, DEFAULT_MODELS_DIR
from core.scoring.engine import MAX_TEXT_CHARS
from tests.webapp.conftest import check_against_spec

DONE_WHEN = [
    ("The support team fixed my issue in minutes, thank you!", "positive"),
    ("I have been waiting three weeks and nobody answers my emails", "negative"),
    ("The meeting moved to 3pm in room 4", "neutral"),
]


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(("text", "label"), DONE_WHEN)
def test_score_one_text(client, auth, text: str, label: str) -> None:
    response = client.post("/v1/sentiment", json={"text": text}, headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["label"] == label
    assert set(body) == {"label", "score", "confidence", "coverage", "model"}
    assert body["model"] == DEFAULT_MODEL
    assert body["coverage"] == 1.0
    assert -1 <= body["score"] <= 1


def test_sentences_option(client, auth) -> None:
    text = "I love the new app. But the login keeps failing and I am fed up."
    body = client.post(
        "/v1/sentiment", json={"text": text, "sentences": True}, headers=auth
    ).get_json()
    assert [s["label"] for s in body["sentences"]] == ["positive", "negative"]
    for s in body["sentences"]:
        assert text[s["start"] : s["end"]] == s["text"]


def test_x_api_key_header(client, keys) -> None:
    _, _, secret = keys.issue()
    response = client.post(
        "/v1/sentiment", json={"text": "fine"}, headers={"X-API-Key": secret}
    )
    assert response.status_code == 200


def test_batch_scores_in_order_and_isolates_bad_items(client, auth) -> None:
    texts = [
        DONE_WHEN[0][0],
        "",
        123,
        DONE_WHEN[1][0],
        "x" * (MAX_TEXT_CHARS + 1),
        None,
        DONE_WHEN[2][0],
    ]
    response = client.post("/v1/sentiment/batch", json={"texts": texts}, headers=auth)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r.get("label") for r in results] == [
        "positive",
        None,
        None,
        "negative",
        None,
        None,
        "neutral",
    ]
    assert [r.get("error", {}).get("code") for r in results] == [
        None,
        "text_empty",
        "invalid_request",
        None,
        "text_too_long",
        "invalid_request",
        None,
    ]
    assert "label" not in results[1] and "error" not in results[0]


def test_batch_limits(client, auth) -> None:
    err = _error(
        client.post("/v1/sentiment/batch", json={"texts": ["ok"] * 101}, headers=auth),
        400,
        "batch_too_large",
    )
    assert "100" in err["message"]
    _error(
        client.post("/v1/sentiment/batch", json={"texts": []}, headers=auth),
        400,
        "invalid_request",
    )
    err = _error(
        client.post("/v1/sentiment/batch", json={"texts": "one"}, headers=auth),
        400,
        "invalid_request",
    )
    assert err["field"] == "texts"
    ok = client.post("/v1/sentiment/batch", json={"texts": ["ok"] * 100}, headers=auth)
    assert len(ok.get_json()["results"]) == 100


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "invalid_request", "text"),
        ({"text": 5}, "invalid_request", "text"),
        ({"text": ["a"]}, "invalid_request", "text"),
        ({"text": "hi", "sentences": "yes"}, "invalid_request", "sentences"),
        ({"text": "hi", "sentences": 1}, "invalid_request", "sentences"),
        ({"text": "hi", "explain": 0}, "invalid_request", "explain"),
        ({"text": "hi", "model": 3}, "invalid_request", "model"),
        ({"text": "hi", "txt": "typo"}, "invalid_request", "txt"),
        ({"text": ""}, "text_empty", "text"),
        ({"text": " \n\t "}, "text_empty", "text"),
        ({"text": "a" * (MAX_TEXT_CHARS + 1)}, "text_too_long", "text"),
    ],
)
def test_bad_fields(client, auth, body, code: str, field: str) -> None:
    err = _error(client.post("/v1/sentiment", json=body, headers=auth), 400, code)
    assert err["field"] == field
    assert field in err["message"] or code != "invalid_request"


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b"\xff\xfe{}", b'{"text": "\xc3\x28"}', b"", b"[1, 2"],
)
def test_invalid_json(client, auth, raw: bytes) -> None:
    response = client.post(
        "/v1/sentiment", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"[" * 500_000,
        b'{"text": ' + b"9" * 5000 + b"}",
        b'{"text": "hi", "sentences": ' + b"9" * 5000 + b"}",
    ],
)
def test_pathological_json_is_invalid_json(client, auth, raw: bytes) -> None:
    response = client.post(
        "/v1/sentiment", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 400, "invalid_json")


def test_body_at_the_size_limit_is_refused(app, client, auth) -> None:
    limit = app.extensions["tonehub"].settings.max_body_bytes
    body = b'{"text": "ok"}' + b" " * (limit - 14)
    assert len(body) == limit
    response = client.post(
        "/v1/sentiment", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 413, "payload_too_large")
    ok = client.post(
        "/v1/sentiment",
        data=body[:-1],
        headers={**auth, "Content-Type": "application/json"},
    )
    assert ok.status_code == 200


def test_batch_total_characters(client, auth) -> None:
    from webapp.api.views import BATCH_MAX_CHARS

    texts = ["word " * 12_000] * (BATCH_MAX_CHARS // 60_000 + 1)
    err = _error(
        client.post("/v1/sentiment/batch", json={"texts": texts}, headers=auth),
        400,
        "batch_too_large",
    )
    assert "characters" in err["message"]


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"[{}]"])
def test_body_must_be_an_object(client, auth, raw: bytes) -> None:
    response = client.post(
        "/v1/sentiment", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 400, "invalid_request")


def test_max_length_text_is_scored(client, auth) -> None:
    text = ("Fine. " * (MAX_TEXT_CHARS // 6))[:MAX_TEXT_CHARS]
    response = client.post("/v1/sentiment", json={"text": text}, headers=auth)
    assert response.status_code == 200
    assert response.get_json()["coverage"] == 1.0


def test_unicode_escapes_and_lone_surrogates(client, auth) -> None:
    raw = json.dumps({"text": "ok \ud83d\ude00 \ud800 \u0000 \u202e"})
    response = client.post(
        "/v1/sentiment", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200


def test_payload_too_large(client, auth) -> None:
    raw = json.dumps({"text": "a" * (3 * 1024 * 1024)})
    response = client.post(
        "/v1/sentiment", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    _error(response, 413, "payload_too_large")


def test_unsupported_media_type(client, auth) -> None:
    response = client.post("/v1/sentiment", data={"text": "hi"}, headers=auth)
    _error(response, 415, "unsupported_media_type")


def test_method_not_allowed_and_not_found(client, auth) -> None:
    response = client.get("/v1/sentiment", headers=auth)
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    _error(client.get("/v1/nothing-here", headers=auth), 404, "not_found")
    _error(client.get("/nothing-here"), 404, "not_found")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer th_live_" + "A" * 32},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "th_live_short"},
    ],
)
def test_unauthorized_is_uniform(client, headers) -> None:
    response = client.post("/v1/sentiment", json={"text": "hi"}, headers=headers)
    err = _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert err == {
        "code": "unauthorized",
        "message": "A valid API key is required: send 'Authorization: Bearer <key>' "
        "or 'X-API-Key'.",
    }


def test_revoked_key_is_refused_like_an_unknown_one(client, keys) -> None:
    ws, key_id, secret = keys.issue()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=headers).status_code == 200
    keys.revoke(ws, key_id)
    unknown = client.get(
        "/v1/models", headers={"Authorization": "Bearer th_live_" + "B" * 32}
    )
    revoked = client.get("/v1/models", headers=headers)
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.get_json() == unknown.get_json()


def test_auth_comes_before_body_checks(client) -> None:
    response = client.post("/v1/sentiment", data=b"{", headers={"X-API-Key": "x"})
    _error(response, 401, "unauthorized")


def test_models(client, auth) -> None:
    body = client.get("/v1/models", headers=auth).get_json()
    default = [m for m in body["models"] if m["default"]]
    assert default == [
        {
            "id": DEFAULT_MODEL,
            "name": "tonehub-sentiment",
            "version": DEFAULT_MODEL.rsplit("-", 1)[1],
            "labels": ["negative", "neutral", "positive", "mixed"],
            "max_tokens_per_window": 128,
            "default": True,
        }
    ]
    on_disk = sorted(p.parent.name for p in DEFAULT_MODELS_DIR.glob("*/model.json"))
    assert [m["id"] for m in body["models"]] == on_disk


def test_health_and_ready(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "model": "ok"},
    }


def test_ready_names_the_failing_part(app, client, spec) -> None:
    app.extensions["tonehub"].redis = Redis(
        host="127.0.0.1", port=1, socket_timeout=0.2
    )
    response = client.get("/readyz")
    err = _error(response, 503, "unavailable")
    assert "redis" in err["message"]
    assert err["checks"] == {"database": "ok", "redis": "failed", "model": "ok"}
    check_against_spec(spec, "/readyz", "get", response)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": {"nested": true}}',
        b'{"text": 1e999}',
        b'{"text": "a", "sentences": null}',
        b'{"texts": null}',
        b'{"text": "' + b"\\u0000" * 1000 + b'"}',
        b'{"text": "\\udfff\\ud800"}',
        b"\x00\x00\x00",
        b'{"text": "' + "🙂".encode() * 5000 + b'"}',
    ],
)
def test_junk_never_500s(client, auth, raw: bytes) -> None:
    for path in ("/v1/sentiment", "/v1/sentiment/batch"):
        response = client.post(
            path, data=raw, headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json


def test_batch_of_only_bad_items(client, auth) -> None:
    response = client.post("/v1/sentiment/batch", json={"texts": ["", 7]}, headers=auth)
    assert response.status_code == 200
    assert [r["error"]["code"] for r in response.get_json()["results"]] == [
        "text_empty",
        "invalid_request",
    ]
