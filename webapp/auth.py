"""API-key authentication for ``/v1``: Bearer token or ``X-API-Key``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import g, request

from core.billing.state import plan_in_force
from webapp.extensions import tonehub


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
    """``before_request`` hook: authenticate or raise ``Unauthorized``.

    Sets ``g.api_key_id``, ``g.workspace_id`` and ``g.plan`` (the plan in
    force, which admission checks against).
    """
    g.started = time.perf_counter()
    now = datetime.now(UTC)
    ext = tonehub()
    principal = ext.auth.authenticate(key_from_request(), now=now)
    g.api_key_id = principal.key_id
    g.workspace_id = principal.workspace_id
    g.plan = plan_in_force(principal.workspace, now=now, grace=ext.billing_grace)
