"""The sentiment labels, in the model's output order."""

from __future__ import annotations

from enum import StrEnum


class Sentiment(StrEnum):
    """A sentiment label; the value is what the API returns."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    MIXED = "mixed"
    """Document level only: confidently positive and negative sentences."""


LABEL_ORDER: tuple[Sentiment, ...] = (
    Sentiment.NEGATIVE,
    Sentiment.NEUTRAL,
    Sentiment.POSITIVE,
)
"""Index i of the model's logits is ``LABEL_ORDER[i]``."""
