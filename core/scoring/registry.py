"""The models a process can serve, loaded on first use.

Every directory under ``models/`` with a ``model.json`` is a model version; its
id is ``<name>-<version>``. A request may pin one with ``model``; otherwise the
configured default serves it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import UnknownModel
from core.scoring.engine import Scorer

logger = logging.getLogger(__name__)


class ModelRegistry:
    """Model versions found in a directory, each loaded once, lazily.

    Args:
        models_dir: Directory holding one sub-directory per model version.
        default: Id of the model used when a request names none.
        threads: onnxruntime intra-op threads per model.
        preloaded: Already loaded scorers by id (tests, worker preloading).
        observe: Given to every scorer: called after each model call with
            (model id, rows, seconds).
    """

    def __init__(
        self,
        models_dir: Path,
        default: str,
        *,
        threads: int = 1,
        preloaded: dict[str, Scorer] | None = None,
        observe: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self._dirs: dict[str, Path] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        for meta_file in sorted(models_dir.glob("*/model.json")):
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            model_id = f"{meta['name']}-{meta['version']}"
            self._dirs[model_id] = meta_file.parent
            self._meta[model_id] = meta
        self._loaded: dict[str, Scorer] = dict(preloaded or {})
        for model_id, scorer in self._loaded.items():
            self._meta.setdefault(
                model_id,
                {
                    "name": scorer.name,
                    "version": scorer.version,
                    "max_length": scorer.max_tokens,
                },
            )
        if default not in self._meta:
            raise ValueError(f"default model {default!r} not found in {models_dir}")
        self.default = default
        self._threads = threads
        self._lock = threading.Lock()
        self._observe = observe
        if observe is not None:
            for scorer in self._loaded.values():
                scorer.observe = observe

    def get(self, model_id: str | None = None) -> Scorer:
        """The scorer of ``model_id`` (the default when ``None``).

        Raises:
            UnknownModel: No such model version here.
        """
        if model_id is None:
            model_id = self.default
        scorer = self._loaded.get(model_id)
        if scorer is not None:
            return scorer
        if model_id not in self._dirs:
            raise UnknownModel(
                f"Unknown model '{model_id}'; available: {', '.join(self.ids())}.",
                field="model",
            )
        with self._lock:  # two threads asking at once load it once
            if model_id not in self._loaded:
                logger.info("Loading model %s", model_id)
                scorer = Scorer(self._dirs[model_id], threads=self._threads)
                scorer.observe = self._observe
                self._loaded[model_id] = scorer
        return self._loaded[model_id]

    def reload_after_fork(self) -> None:
        """Drop the models a parent process loaded; load the default anew.

        An onnxruntime session is not documented as fork-safe (its thread
        pools do not survive a fork), so a process forked after loading
        (gunicorn ``--preload``) loads its own. Preloaded scorers that did
        not come from this registry's directory (tests) are kept.
        """
        with self._lock:
            self._loaded = {
                model_id: scorer
                for model_id, scorer in self._loaded.items()
                if model_id not in self._dirs
            }
        self.get()

    def ids(self) -> list[str]:
        """All model ids, sorted."""
        return sorted(self._meta)

    def describe(self) -> list[dict[str, Any]]:
        """Public metadata of every model, without loading any."""
        return [
            {
                "id": model_id,
                "name": self._meta[model_id]["name"],
                "version": self._meta[model_id]["version"],
                "labels": ["negative", "neutral", "positive", "mixed"],
                "max_tokens_per_window": int(self._meta[model_id]["max_length"]),
                "default": model_id == self.default,
            }
            for model_id in self.ids()
        ]
