"""Lexicon baselines (VADER, TextBlob) measured on the same splits as the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

VADER_NEUTRAL_BAND = 0.05
"""VADER's documented thresholds: compound >= 0.05 positive, <= -0.05 negative."""


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """VADER compound scores in [-1, 1]."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] for t in texts])


def textblob_scores(texts: Sequence[str]) -> np.ndarray:
    """TextBlob (pattern lexicon) polarity in [-1, 1]."""
    from textblob import TextBlob

    return np.array([TextBlob(t).sentiment.polarity for t in texts])


BASELINES: dict[str, tuple[Callable[[Sequence[str]], np.ndarray], float]] = {
    "vader": (vader_scores, VADER_NEUTRAL_BAND),
    "textblob": (textblob_scores, 0.0),
}
"""name -> (scorer, half-width of the neutral band)."""


def to_labels(scores: np.ndarray, band: float, *, binary: bool) -> np.ndarray:
    """Map polarity scores to label ids (0 negative, 1 neutral, 2 positive).

    Binary sets have no neutral, so the sign decides (ties go positive).
    """
    if binary:
        return np.where(scores >= 0, 2, 0)
    return np.where(scores > band, 2, np.where(scores < -band, 0, 1))
