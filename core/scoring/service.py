"""Scoring as the API and the workers use it: model choice plus a result cache.

Results are cached in Redis under ``th:cache:<model id>:<sha256>``, the hash
taken over the options and the text as scored, for ``CACHE_TTL_SECONDS``. A
new model version never sees an old version's results. Hits and misses are
counted in Redis (``th:cache:hits`` / ``th:cache:misses``). When Redis fails,
texts are scored without the cache: a cache outage never fails a request.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis, RedisError

from core.config import Settings
from core.errors import InvalidRequest, TonehubError
from core.scoring.engine import Scorer, check_text
from core.scoring.registry import ModelRegistry

logger = logging.getLogger(__name__)

CACHE_PREFIX = "th:cache"
"""Namespace of cached results and the hit/miss counters."""

CACHE_TTL_SECONDS = 7 * 24 * 3600
"""How long a cached result lives."""


class ScoringService:
    """Score texts with a chosen model, through the result cache.

    Args:
        registry: The model versions available.
        redis: Where results are cached; ``None`` disables the cache.
        ttl: Lifetime of a cached result, in seconds.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        redis: Redis | None,
        ttl: int = CACHE_TTL_SECONDS,
    ) -> None:
        self.registry = registry
        self._redis = redis
        self._ttl = ttl

    def score(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        sentences: bool = False,
        explain: bool = False,
        admit: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Score texts in order, each as the API returns it.

        Args:
            texts: Texts to score (validated here).
            model: Model id; the default model when ``None``.
            sentences: Add per-sentence results.
            explain: Add word contributions.
            admit: Called with the number of texts that passed validation,
                before the model runs; metering raises from it to refuse.

        Returns:
            One JSON-ready result per text.

        Raises:
            UnknownModel: ``model`` is not available.
            TextEmpty, TextTooLong, ExplainTooLong: a text is not acceptable.
        """
        self.registry.get(model)
        cleaned = [check_text(t, explain=explain, sentences=sentences) for t in texts]
        if admit is not None:
            admit(len(cleaned))
        return self._score_clean(
            cleaned, model=model, sentences=sentences, explain=explain
        )

    def score_each(
        self,
        items: Sequence[object],
        *,
        model: str | None = None,
        sentences: bool = False,
        explain: bool = False,
        admit: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Score a batch in which a bad item fails alone.

        Args:
            items: Texts as received; anything but an acceptable string gets
                an ``{"error": {"code", "message"}}`` entry at its place.
            model, sentences, explain, admit: As for ``score`` (``admit`` gets
                the number of acceptable items).

        Returns:
            One entry per item, in order: a result or an error.

        Raises:
            UnknownModel: ``model`` is not available (fails the whole batch).
        """
        self.registry.get(model)
        out: list[dict[str, Any]] = []
        good: list[tuple[int, str]] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, str):
                    raise InvalidRequest(
                        "Each item of 'texts' must be a string.", field=f"texts.{i}"
                    )
                good.append((i, check_text(item, explain=explain, sentences=sentences)))
                out.append({})
            except TonehubError as err:
                out.append({"error": {"code": err.code, "message": err.message}})
        if admit is not None:
            admit(len(good))
        scored = self._score_clean(
            [t for _, t in good], model=model, sentences=sentences, explain=explain
        )
        for (i, _), result in zip(good, scored, strict=True):
            out[i] = result
        return out

    def _score_clean(
        self, cleaned: list[str], *, model: str | None, sentences: bool, explain: bool
    ) -> list[dict[str, Any]]:
        scorer = self.registry.get(model)
        options = f"s{int(sentences)}e{int(explain)}"
        keys = [
            f"{CACHE_PREFIX}:{scorer.model_id}:"
            + hashlib.sha256(f"{options}\0{t}".encode()).hexdigest()
            for t in cleaned
        ]
        results: list[dict[str, Any] | None] = self._lookup(keys)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = scorer.score_batch(
                [cleaned[i] for i in missing], sentences=sentences, explain=explain
            )
            for i, result in zip(missing, fresh, strict=True):
                results[i] = result.as_dict()
            self._store({keys[i]: results[i] for i in missing})
        self._count(hits=len(cleaned) - len(missing), misses=len(missing))
        return [r for r in results if r is not None]

    def cache_stats(self) -> dict[str, int]:
        """Cache hits and misses counted so far (zeros when Redis is down)."""
        if self._redis is None:
            return {"hits": 0, "misses": 0}
        try:
            hits, misses = self._redis.mget(
                f"{CACHE_PREFIX}:hits", f"{CACHE_PREFIX}:misses"
            )
        except RedisError:
            return {"hits": 0, "misses": 0}
        return {"hits": int(hits or 0), "misses": int(misses or 0)}

    def _lookup(self, keys: list[str]) -> list[dict[str, Any] | None]:
        if self._redis is None or not keys:
            return [None] * len(keys)
        try:
            raw = self._redis.mget(keys)
        except RedisError as exc:
            logger.warning("Result cache unavailable: %s", exc)
            return [None] * len(keys)
        return [json.loads(r) if r is not None else None for r in raw]

    def _store(self, entries: dict[str, Any]) -> None:
        if self._redis is None:
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for key, value in entries.items():
                    pipe.set(key, json.dumps(value), ex=self._ttl)
                pipe.execute()
        except RedisError as exc:
            logger.warning("Result cache write failed: %s", exc)

    def _count(self, *, hits: int, misses: int) -> None:
        if self._redis is None:
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                if hits:
                    pipe.incrby(f"{CACHE_PREFIX}:hits", hits)
                if misses:
                    pipe.incrby(f"{CACHE_PREFIX}:misses", misses)
                pipe.execute()
        except RedisError as exc:
            logger.warning("Result cache counters failed: %s", exc)


def build_scoring_service(
    settings: Settings,
    *,
    redis: Redis,
    scorer: Scorer | None = None,
    observe: Callable[[str, int, float], None] | None = None,
) -> ScoringService:
    """The service every process uses, with its default model already loaded.

    Args:
        settings: Where the models are and which is the default.
        redis: The result cache.
        scorer: An already loaded model to reuse (tests share one).
        observe: Called after each model call with (model id, rows, seconds).

    Returns:
        The scoring service.
    """
    registry = ModelRegistry(
        settings.models_dir,
        settings.default_model,
        threads=settings.ort_threads,
        preloaded={scorer.model_id: scorer} if scorer else None,
        observe=observe,
    )
    registry.get()  # load the default model now, not on the first request
    return ScoringService(registry, redis=redis)
