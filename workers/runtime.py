"""Per-process collaborators of the worker, built once and reused by jobs.

The worker entry point calls ``configure`` before forking, so the model is
loaded once and shared copy-on-write by every job.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Settings
from core.scoring.engine import Scorer


@dataclass
class Runtime:
    """What jobs need: settings and the loaded model."""

    settings: Settings
    scorer: Scorer


_runtime: Runtime | None = None


def configure(settings: Settings, *, scorer: Scorer | None = None) -> Runtime:
    """Build the process runtime (loading the model unless one is given)."""
    global _runtime
    _runtime = Runtime(
        settings=settings,
        scorer=scorer or Scorer(settings.model_dir, threads=settings.ort_threads),
    )
    return _runtime


def get() -> Runtime:
    """The process runtime, configured from the environment on first use."""
    return _runtime or configure(Settings.from_env())
