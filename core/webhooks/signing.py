"""Standard Webhooks signing: secrets, the signed content and the headers.

A secret is ``whsec_`` plus base64 of 24 random bytes. The signature of a
message is ``v1,`` plus base64 of HMAC-SHA256, keyed with the secret's decoded
bytes, over ``{webhook-id}.{webhook-timestamp}.{body}``. During a secret
rotation both secrets sign and the signatures are space-separated
(https://www.standardwebhooks.com/, "Signature scheme").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
"""Every signing secret starts with this."""

SECRET_BYTES = 24
"""Random bytes in a new secret (the spec asks for 24 to 64)."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_<base64>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message.

    Args:
        secret: A ``whsec_`` secret.
        msg_id: The ``webhook-id`` header.
        timestamp: The ``webhook-timestamp`` header (Unix seconds).
        body: The exact bytes sent.
    """
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets_: list[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type.

    Args:
        secrets_: Every secret that signs now (the new one first).
        msg_id, timestamp, body: As for ``sign``.
    """
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(s, msg_id, timestamp, body) for s in secrets_
        ),
    }
