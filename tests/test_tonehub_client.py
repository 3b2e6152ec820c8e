"""``tonehub.webhooks.verify`` accepts exactly what Tonehub signs."""

from __future__ import annotations

import json

import pytest

from core.webhooks.signing import new_secret, signed_headers
from tonehub import WebhookVerificationError, verify

BODY = json.dumps(
    {"type": "job.succeeded", "timestamp": "2026-12-04T10:00:00Z", "data": {"id": 1}}
).encode()
NOW = 1_796_000_000


def _headers(*secrets: str, stamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(list(secrets), "evt_1", stamp, body)


def test_a_signed_message_verifies_and_yields_the_event() -> None:
    secret = new_secret()
    event = verify(BODY, _headers(secret), secret, now=NOW + 10)
    assert event["type"] == "job.succeeded" and event["data"] == {"id": 1}
    # Header names in any case (frameworks differ).
    upper = {k.title(): v for k, v in _headers(secret).items()}
    assert verify(BODY, upper, secret, now=NOW)["data"] == {"id": 1}


def test_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = _headers(new, old)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(BODY, headers, old, now=NOW)["type"] == "job.succeeded"
    assert verify(BODY, headers, new, now=NOW)["type"] == "job.succeeded"
    assert verify(BODY, _headers(new), [old, new], now=NOW)["type"] == "job.succeeded"


@pytest.mark.parametrize(
    "change",
    [
        "body",
        "id",
        "secret",
        "stale",
        "future",
        "missing",
        "bad_stamp",
        "unicode_digit",
        "huge_stamp",
        "v2",
    ],
)
def test_anything_else_is_refused(change: str) -> None:
    secret = new_secret()
    headers, body, key, now = _headers(secret), BODY, secret, NOW
    if change == "body":
        body = BODY.replace(b'"id": 1', b'"id": 2')
    elif change == "id":
        headers["webhook-id"] = "evt_2"
    elif change == "secret":
        key = new_secret()
    elif change == "stale":
        now = NOW + 301
    elif change == "future":
        now = NOW - 301
    elif change == "missing":
        del headers["webhook-signature"]
    elif change == "bad_stamp":
        headers["webhook-timestamp"] = "soon"
    elif change == "unicode_digit":
        headers["webhook-timestamp"] = "²"  # str.isdigit() says yes; int() says no
    elif change == "huge_stamp":
        headers["webhook-timestamp"] = "9" * 5000
    elif change == "v2":
        headers["webhook-signature"] = headers["webhook-signature"].replace(
            "v1,", "v2,"
        )
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, key, now=now)
