"""Verify a Tonehub webhook (Standard Webhooks signatures), stdlib only.

Usage in a receiver (any framework: pass the raw body bytes, not re-encoded
JSON)::

    from tonehub.webhooks import WebhookVerificationError, verify

    try:
        event = verify(request.get_data(), request.headers, "whsec_...")
    except WebhookVerificationError:
        return "", 400
    if already_seen(event_id := request.headers["webhook-id"]):
        return "", 200  # retries reuse the same webhook-id
    handle(event["type"], event["data"])

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``;
``webhook-signature`` holds one or more space-separated ``v1,<base64>``
HMAC-SHA256 signatures keyed with the base64-decoded part of the secret after
``whsec_`` (several during a secret rotation: any one matching is enough).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

TOLERANCE_SECONDS = 300
"""How far ``webhook-timestamp`` may be from now (replay protection)."""


class WebhookVerificationError(Exception):
    """The message is not a valid, fresh Tonehub webhook."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"Missing header {name}.")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("A Tonehub secret is whsec_ followed by base64.") from exc


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """Check a webhook's signature and age; return the event it carries.

    Args:
        body: The request body exactly as received.
        headers: The request headers (any case).
        secrets: The endpoint's ``whsec_`` secret, or several (while you
            rotate: the old and the new one).
        now: Unix time to check against (tests); default the clock.
        tolerance: Seconds the timestamp may be off.

    Returns:
        The event: ``{"type", "timestamp", "data"}``.

    Raises:
        WebhookVerificationError: A missing header, a stale or future
            timestamp, or no matching signature.
    """
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise WebhookVerificationError("webhook-timestamp is not a Unix time.")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise WebhookVerificationError("The message is too old or too new.")
    content = f"{msg_id}.{stamp}.".encode() + body
    keys = [_key(secrets)] if isinstance(secrets, str) else [_key(s) for s in secrets]
    expected = [
        base64.b64encode(hmac.new(k, content, hashlib.sha256).digest()).decode()
        for k in keys
    ]
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and any(hmac.compare_digest(value, e) for e in expected):
            event: dict[str, Any] = json.loads(body)
            return event
    raise WebhookVerificationError("No signature matches the secret.")
