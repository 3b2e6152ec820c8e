"""Datasets under ``../shared/data`` and the training mix built from them.

Every set is JSON Lines of ``{"text", "label"}``; see the data README for the
provenance of each. The licences below are quoted as each source states them,
and feed the model card.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""Model output order. Index i of the logits is ``LABELS[i]``."""

LABEL_TO_ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset directory and what its source says about its use."""

    name: str
    ternary: bool
    licence: str
    commercial_use: bool


DATASETS: dict[str, DatasetInfo] = {
    "sst2": DatasetInfo(
        "sst2",
        False,
        "No licence file; Stanford SST v1.0 readme asks users to cite Socher et al. "
        "(EMNLP 2013). No other terms stated.",
        False,
    ),
    "sst5": DatasetInfo(
        "sst5",
        True,
        "Stanford SST v1.0 trees; readme asks users to cite Socher et al. (EMNLP "
        "2013). No other terms stated.",
        False,
    ),
    "airline": DatasetInfo(
        "airline",
        True,
        "No licence in the source repo; listed on Kaggle as CC BY-NC-SA 4.0 "
        "(Crowdflower 'Data for Everyone'). Twitter/X terms apply.",
        False,
    ),
    "tweet_sentiment_extraction": DatasetInfo(
        "tweet_sentiment_extraction",
        True,
        "No licence file; Kaggle competition data (Figure Eight). Twitter/X terms "
        "apply.",
        False,
    ),
    "tweeteval_sentiment": DatasetInfo(
        "tweeteval_sentiment",
        True,
        "TweetEval: 'released without any restrictions but restrictions may apply "
        "to individual tasks ... or Twitter'. SemEval-2017 Task 4A data.",
        False,
    ),
    "dynasent_r1": DatasetInfo(
        "dynasent_r1", True, "CC BY 4.0 (Potts et al. 2020, DynaSent).", True
    ),
    "dynasent_r2": DatasetInfo(
        "dynasent_r2", True, "CC BY 4.0 (Potts et al. 2020, DynaSent).", True
    ),
}

_PTB_FIXES = [
    (re.compile(r"-LRB-"), "("),
    (re.compile(r"-RRB-"), ")"),
    (re.compile(r"\\([/*])"), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b", re.IGNORECASE), r"\1"),
    (re.compile(r" ([.,!?;:%)])"), r"\1"),
    (re.compile(r"([($]) "), r"\1"),
    (re.compile(r"``\s*|\s*''"), '"'),
]


def detokenize_ptb(text: str) -> str:
    """Undo the Penn Treebank tokenization of the SST sets.

    Args:
        text: PTB-tokenized text such as ``"it 's a charming movie ."``.

    Returns:
        Text closer to what a person types: ``"it's a charming movie."``.
    """
    for pattern, repl in _PTB_FIXES:
        text = pattern.sub(repl, text)
    return text.strip()


def load_split(data_dir: Path, name: str, split: str) -> list[tuple[str, int]]:
    """Read one split as ``(text, label_id)`` pairs, dropping ``mixed`` rows.

    Args:
        data_dir: The shared data directory.
        name: Dataset directory name, a key of ``DATASETS``.
        split: ``train``, ``dev`` or ``test``.

    Returns:
        The rows in file order; SST text is detokenized.
    """
    rows: list[tuple[str, int]] = []
    with (data_dir / name / f"{split}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["label"] not in LABEL_TO_ID:
                continue
            text = row["text"]
            if name.startswith("sst"):
                text = detokenize_ptb(text)
            rows.append((text, LABEL_TO_ID[row["label"]]))
    return rows


PROFILES: dict[str, dict[str, int | None]] = {
    # "dataset/split" -> rows to sample (None: all of them)
    "full": {
        "sst2/train": 16000,
        "sst5/train": None,
        "airline/train": None,
        "tweet_sentiment_extraction/train": None,
    },
    "full-all-sst2": {
        "sst2/train": None,
        "sst5/train": None,
        "airline/train": None,
        "tweet_sentiment_extraction/train": None,
    },
    "tweets": {
        # Weighted towards short informal text: half the SST-2 sample of ``full``
        # (tweets are the largest part of the mix); meant for two epochs.
        "sst2/train": 8000,
        "sst5/train": None,
        "airline/train": None,
        "tweet_sentiment_extraction/train": None,
    },
    "commercial": {
        # Only DynaSent grants commercial use (CC BY 4.0), and only its dev splits
        # are available here: this profile trains on them and is measured on the
        # DynaSent test splits and the other sets.
        "dynasent_r1/dev": None,
        "dynasent_r2/dev": None,
    },
    "quick": {
        "sst2/train": 3000,
        "sst5/train": 2000,
        "airline/train": 3000,
        "tweet_sentiment_extraction/train": 4000,
    },
}
"""Training mixes. SST-2 train is 67k mostly short phrases; ``full`` samples its
longer phrases so the two poles do not drown out neutral."""


def build_mix(data_dir: Path, profile: str, *, seed: int) -> list[tuple[str, int]]:
    """Assemble the shuffled training mix for a profile.

    Args:
        data_dir: The shared data directory.
        profile: A key of ``PROFILES``.
        seed: Seed for sampling and shuffling.

    Returns:
        ``(text, label_id)`` pairs.
    """
    rng = random.Random(seed)
    mix: list[tuple[str, int]] = []
    for key, count in PROFILES[profile].items():
        name, split = key.split("/")
        rows = load_split(data_dir, name, split)
        if name == "sst2":
            # Prefer phrases of three words or more: fragments like "exit" teach
            # little and are over-represented in the treebank phrases.
            rows = [r for r in rows if len(r[0].split()) >= 3]
        if count is not None and count < len(rows):
            rows = rng.sample(rows, count)
        mix.extend(rows)
    rng.shuffle(mix)
    return mix
