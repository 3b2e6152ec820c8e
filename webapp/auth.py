"""API-key authentication for ``/v1``: Bearer token or ``X-API-Key``."""

from __future__ import annotations

from flask import g, request

from core.accounts import authenticate
from core.persistence.models import ApiKey
from webapp.extensions import get_db


def key_from_request() -> str | None:
    """The key the client sent, or ``None``.

    ``Authorization: Bearer <key>`` wins over ``X-API-Key``; any other
    Authorization scheme counts as no key.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("X-API-Key")


def require_api_key() -> None:
    """``before_request`` hook: authenticate or raise ``Unauthorized``."""
    key: ApiKey = authenticate(get_db(), key_from_request())
    g.api_key_id = key.id
    g.workspace_id = key.workspace_id
