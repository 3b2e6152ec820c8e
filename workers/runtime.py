"""Per-process collaborators of the worker, built once and reused by jobs.

The worker entry point calls ``configure`` before forking, so the model is
loaded once and shared copy-on-write by every job.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from core.config import Settings
from core.scoring.engine import Scorer
from core.scoring.service import ScoringService, build_scoring_service


@dataclass
class Runtime:
    """What jobs need: settings and the scoring service (models loaded)."""

    settings: Settings
    scoring: ScoringService


_runtime: Runtime | None = None


def configure(settings: Settings, *, scorer: Scorer | None = None) -> Runtime:
    """Build the process runtime and load the default model (unless given)."""
    global _runtime
    scoring = build_scoring_service(
        settings, redis=Redis.from_url(settings.redis_url), scorer=scorer
    )
    _runtime = Runtime(settings=settings, scoring=scoring)
    return _runtime


def get() -> Runtime:
    """The process runtime, configured from the environment on first use."""
    return _runtime or configure(Settings.from_env())
