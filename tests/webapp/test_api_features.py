"""Mixed label, explanations, model choice and the result cache, via the API."""

from __future__ import annotations

import pytest
from redis import Redis

from core.config import DEFAULT_MODEL
from core.scoring.engine import EXPLAIN_MAX_WORDS
from core.scoring.service import CACHE_PREFIX

MIXED = "I love the new design. But the app crashes every hour and support ignores me."


def _post(client, auth, body: dict, path: str = "/v1/sentiment"):
    return client.post(path, json=body, headers=auth)


def test_mixed_text(client, auth) -> None:
    body = _post(client, auth, {"text": MIXED, "sentences": True}).get_json()
    assert body["label"] == "mixed"
    assert {s["label"] for s in body["sentences"]} == {"positive", "negative"}
    # score and confidence still describe the whole text
    assert body["score"] == pytest.approx(
        body["confidence"]["positive"] - body["confidence"]["negative"], abs=2e-4
    )


def test_one_sided_texts_are_not_mixed(client, auth) -> None:
    for text in [
        "Great support. Fast answers. Thank you!",
        "Broken again. Nobody answers. I want a refund.",
    ]:
        assert _post(client, auth, {"text": text}).get_json()["label"] != "mixed"


def test_explain_gives_word_weights(client, auth) -> None:
    text = "The support team was slow but the fix is excellent and I am happy"
    body = _post(client, auth, {"text": text, "explain": True}).get_json()
    weights = {w["text"]: w["weight"] for w in body["explanation"]}
    assert len(body["explanation"]) == len(text.split())
    for w in body["explanation"]:
        assert text[w["start"] : w["end"]] == w["text"]
    assert weights["excellent"] > 0.05 and weights["happy"] > 0.05
    assert weights["slow"] < -0.05
    assert weights["excellent"] > weights["the"]


def test_explain_length_limit(client, auth) -> None:
    text = " ".join(["fine"] * (EXPLAIN_MAX_WORDS + 1))
    response = _post(client, auth, {"text": text, "explain": True})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "explain_too_long"
    ok = _post(
        client, auth, {"text": " ".join(["fine"] * EXPLAIN_MAX_WORDS), "explain": True}
    )
    assert ok.status_code == 200
    batch = _post(
        client,
        auth,
        {"texts": ["good", text], "explain": True},
        "/v1/sentiment/batch",
    ).get_json()["results"]
    assert "explanation" in batch[0]
    assert batch[1]["error"]["code"] == "explain_too_long"


def test_sentence_limit_per_item(client, auth) -> None:
    many = "Fine. " * 1001
    single = _post(client, auth, {"text": many, "sentences": True})
    assert single.status_code == 400
    assert single.get_json()["error"]["code"] == "too_many_sentences"
    batch = _post(
        client,
        auth,
        {"texts": ["Fine.", many], "sentences": True},
        "/v1/sentiment/batch",
    ).get_json()["results"]
    assert batch[0]["sentences"][0]["text"] == "Fine."
    assert batch[1]["error"]["code"] == "too_many_sentences"


def test_model_parameter(client, auth) -> None:
    body = _post(
        client, auth, {"text": "ok", "model": "tonehub-sentiment-1.0.0"}
    ).get_json()
    assert body["model"] == "tonehub-sentiment-1.0.0"
    default = _post(client, auth, {"text": "ok", "model": None}).get_json()
    assert default["model"] == "tonehub-sentiment-1.3.0"
    for path, payload in [
        ("/v1/sentiment", {"text": "ok", "model": "gpt-9"}),
        ("/v1/sentiment/batch", {"texts": ["ok"], "model": "gpt-9"}),
        ("/v1/sentiment", {"text": "ok", "model": ""}),
    ]:
        response = _post(client, auth, payload, path)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "unknown_model" and error["field"] == "model"
        assert "tonehub-sentiment-1.0.0" in error["message"]


def test_cache_hits_and_misses(app, client, auth, redis: Redis) -> None:
    service = app.extensions["tonehub"].scoring
    first = _post(client, auth, {"text": "Cached answers are fast"}).get_json()
    assert service.cache_stats() == {"hits": 0, "misses": 1}
    second = _post(client, auth, {"text": "Cached answers are fast"}).get_json()
    assert second == first
    assert service.cache_stats() == {"hits": 1, "misses": 1}
    # Other options are another entry.
    _post(client, auth, {"text": "Cached answers are fast", "sentences": True})
    assert service.cache_stats() == {"hits": 1, "misses": 2}
    keys = [k.decode() for k in redis.scan_iter(f"{CACHE_PREFIX}:{DEFAULT_MODEL}:*")]
    assert len(keys) == 2
    assert 0 < redis.ttl(keys[0]) <= 7 * 24 * 3600
    # The text itself is never a key.
    assert not any("Cached" in k for k in keys)
    batch = _post(
        client,
        auth,
        {"texts": ["Cached answers are fast", "new"]},
        "/v1/sentiment/batch",
    ).get_json()["results"]
    assert batch[0]["label"] == first["label"]
    assert service.cache_stats() == {"hits": 2, "misses": 3}


def test_cache_outage_does_not_fail_requests(app, client, auth) -> None:
    service = app.extensions["tonehub"].scoring
    service._redis = Redis(host="127.0.0.1", port=1, socket_timeout=0.2)
    response = _post(client, auth, {"text": "Still works without Redis"})
    assert response.status_code == 200
    assert service.cache_stats() == {"hits": 0, "misses": 0}
