"""Scoring jobs."""

from __future__ import annotations

import logging

from workers import runtime

logger = logging.getLogger(__name__)


def score_texts(
    texts: list[str], *, sentences: bool = False
) -> list[dict[str, object]]:
    """Score texts off the request path; the result is kept by RQ.

    Args:
        texts: Texts to score (validated like the API does; a bad one fails
            the job so it lands in the failed registry).
        sentences: Also score sentences.

    Returns:
        One JSON-ready result per text.
    """
    results = runtime.get().scoring.score(texts, sentences=sentences)
    logger.info("Scored %d texts", len(results))
    return results
