"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import logging
from typing import Any

from apiflask import APIBlueprint
from flask import Response
from sqlalchemy import text

from webapp.errors import error_response
from webapp.extensions import get_db, tonehub
from webapp.schemas import HealthOut, ReadyOut

logger = logging.getLogger(__name__)

bp = APIBlueprint("health", __name__, tag="Health")


@bp.get("/healthz")
@bp.output(HealthOut)
@bp.doc(summary="The process is alive")
def healthz() -> dict[str, Any]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.output(ReadyOut)
@bp.doc(summary="Database, Redis and model are ready", responses={503: "unavailable"})
def readyz() -> dict[str, Any] | Response:
    """Readiness: 503 naming each failing part."""
    checks = {
        "database": _check(lambda: get_db().execute(text("SELECT 1"))),
        "redis": _check(lambda: tonehub().redis.ping()),
        "model": _check(lambda: tonehub().scoring.registry.get().predict_proba(["ok"])),
    }
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        return error_response(
            "unavailable",
            f"Not ready: {', '.join(failing)}.",
            503,
            extra={"checks": checks},
        )
    return {"status": "ready", "checks": checks}


def _check(probe: Any) -> str:
    try:
        probe()
    except Exception as exc:  # a probe reports failure, it never raises
        logger.warning("Readiness check failed: %s", exc)
        return "failed"
    return "ok"
