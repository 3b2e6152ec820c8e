"""Evaluate the exported model (int8, and its fp32 twin) on held-out splits.

Writes ``metrics.json`` and ``MODEL_CARD.md`` into the model directory. The
numbers come from the same ``core.scoring.engine.Scorer`` that serves the API,
so what is measured is what ships.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from core.scoring.engine import Scorer
from core.scoring.training.data import DATASETS, LABELS, PROFILES, load_split
from core.scoring.training.train import TrainConfig

logger = logging.getLogger(__name__)

EVAL_SETS: list[tuple[str, str]] = [
    ("sst2", "dev"),
    ("tweeteval_sentiment", "test"),
    ("tweeteval_sentiment", "dev"),
    ("airline", "dev"),
    ("sst5", "dev"),
    ("dynasent_r1", "dev"),
    ("dynasent_r2", "dev"),
]
"""Held-out splits measured. None of them is in the training mix."""

CALIBRATION_SETS = [("tweeteval_sentiment", "dev"), ("airline", "dev"), ("sst5", "dev")]
"""Ternary dev splits the softmax temperature is fitted on."""


def _metrics(probs: np.ndarray, gold: np.ndarray, binary: bool) -> dict[str, object]:
    if binary:
        # SST-2 has no neutral: the official metric compares the two poles only.
        pred = np.where(probs[:, 2] > probs[:, 0], 2, 0)
    else:
        pred = probs.argmax(axis=1)
    per_class: dict[str, dict[str, float]] = {}
    recalls = []
    for k, name in enumerate(LABELS):
        if binary and name == "neutral":
            continue
        tp = int(((pred == k) & (gold == k)).sum())
        support = int((gold == k).sum())
        predicted = int((pred == k).sum())
        recall = tp / support if support else 0.0
        recalls.append(recall)
        per_class[name] = {
            "precision": round(100 * tp / predicted, 2) if predicted else 0.0,
            "recall": round(100 * recall, 2),
            "support": support,
        }
    return {
        "accuracy": round(100 * float((pred == gold).mean()), 2),
        "macro_recall": round(100 * float(np.mean(recalls)), 2),
        "ece": round(100 * _ece(probs, gold), 2),
        "per_class": per_class,
        "n": len(gold),
    }


def _ece(probs: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top label, equal-width bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == gold
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(conf[inside].mean() - correct[inside].mean())
    return float(total)


def _fit_temperature(logp: np.ndarray, gold: np.ndarray) -> float:
    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(gold)), gold] - np.log(np.exp(z).sum(1))).mean())

    return float(minimize_scalar(nll, bounds=(0.3, 5.0), method="bounded").x)


def _with_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1)) / t
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluate(
    model_dir: Path, data_dir: Path, *, work_dir: Path, train_config: TrainConfig
) -> dict[str, object]:
    """Measure int8 and fp32, calibrate, write metrics and the model card.

    Args:
        model_dir: The exported model directory (int8 ``model.onnx``).
        data_dir: The shared data directory.
        work_dir: The training work directory (fp32 graph).
        train_config: The settings the model was trained with.

    Returns:
        The metrics written to ``metrics.json``.
    """
    meta_path = model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["temperature"] = 1.0
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    int8 = Scorer(model_dir, threads=2)
    fp32 = Scorer(
        model_dir, threads=2, onnx_file=str(work_dir / "model.fp32.fused.onnx")
    )
    raw: dict[str, dict[str, np.ndarray]] = {}
    timings: dict[str, float] = {}
    for name, split in EVAL_SETS:
        rows = load_split(data_dir, name, split)
        texts = [t for t, _ in rows]
        key = f"{name}/{split}"
        raw[key] = {"gold": np.array([y for _, y in rows])}
        for label, scorer in (("int8", int8), ("fp32", fp32)):
            started = time.perf_counter()
            raw[key][label] = scorer.predict_proba(texts)
            timings[f"{key}/{label}"] = time.perf_counter() - started
            logger.info("%s %s done in %.1fs", key, label, timings[f"{key}/{label}"])

    cal = [f"{n}/{s}" for n, s in CALIBRATION_SETS]
    temperature = _fit_temperature(
        np.log(np.clip(np.concatenate([raw[k]["int8"] for k in cal]), 1e-12, 1)),
        np.concatenate([raw[k]["gold"] for k in cal]),
    )
    results: dict[str, object] = {}
    for key, r in raw.items():
        binary = not DATASETS[key.split("/")[0]].ternary
        int8_cal = _with_temperature(r["int8"], temperature)
        results[key] = {
            "int8": _metrics(int8_cal, r["gold"], binary),
            "fp32": _metrics(
                _with_temperature(r["fp32"], temperature), r["gold"], binary
            ),
            "int8_fp32_agreement": round(
                100 * float((r["int8"].argmax(1) == r["fp32"].argmax(1)).mean()), 2
            ),
        }
    meta["temperature"] = round(temperature, 4)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    report = {
        "model": f"{meta['name']}-{meta['version']}",
        "temperature": meta["temperature"],
        "train_config": asdict(train_config),
        "training_mix": PROFILES[train_config.profile],
        "sets": results,
        "eval_seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    (model_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    from core.scoring.training.card import write_model_card

    write_model_card(model_dir, report, work_dir=work_dir)
    return report
