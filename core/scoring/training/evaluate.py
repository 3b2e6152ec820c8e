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
from typing import Any

import numpy as np

from core.scoring.engine import Scorer
from core.scoring.training.baselines import BASELINES, to_labels
from core.scoring.training.config import TrainConfig
from core.scoring.training.data import DATASETS, LABELS, PROFILES, load_split

logger = logging.getLogger(__name__)

EVAL_SETS: list[tuple[str, str]] = [
    ("sst2", "dev"),
    ("tweeteval_sentiment", "test"),
    ("tweeteval_sentiment", "dev"),
    ("airline", "dev"),
    ("sst5", "dev"),
    ("dynasent_r1", "dev"),
    ("dynasent_r2", "dev"),
    ("dynasent_r1", "test"),
    ("dynasent_r2", "test"),
]
"""Splits measured; any that a profile trains on is left out of its report."""

CALIBRATION_SETS = [("tweeteval_sentiment", "dev"), ("airline", "dev"), ("sst5", "dev")]
"""Ternary dev splits the softmax temperature is fitted on."""


def _metrics(probs: np.ndarray, gold: np.ndarray, binary: bool) -> dict[str, object]:
    if binary:
        # SST-2 has no neutral: the official metric compares the two poles only.
        pred = np.where(probs[:, 2] > probs[:, 0], 2, 0)
    else:
        pred = probs.argmax(axis=1)
    if binary:
        # Calibration of the binary decision the metric uses: p_pos / (p_pos + p_neg).
        pos = probs[:, 2] / (probs[:, 0] + probs[:, 2])
        ece = expected_calibration_error(
            np.stack([1 - pos, np.zeros_like(pos), pos], axis=1), gold
        )
    else:
        ece = expected_calibration_error(probs, gold)
    return label_metrics(pred, gold, binary) | {"ece": round(100 * ece, 2)}


def label_metrics(
    pred: np.ndarray, gold: np.ndarray, binary: bool
) -> dict[str, object]:
    """Accuracy, macro recall/F1, per-class P/R and the confusion matrix."""
    classes = [k for k, name in enumerate(LABELS) if not (binary and name == "neutral")]
    per_class: dict[str, dict[str, float]] = {}
    recalls, f1s = [], []
    for k in classes:
        tp = int(((pred == k) & (gold == k)).sum())
        support = int((gold == k).sum())
        predicted = int((pred == k).sum())
        recall = tp / support if support else 0.0
        precision = tp / predicted if predicted else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        recalls.append(recall)
        f1s.append(f1)
        per_class[LABELS[k]] = {
            "precision": round(100 * precision, 2),
            "recall": round(100 * recall, 2),
            "f1": round(100 * f1, 2),
            "support": support,
        }
    confusion = [
        [int(((gold == g) & (pred == p)).sum()) for p in range(3)] for g in range(3)
    ]
    return {
        "accuracy": round(100 * float((pred == gold).mean()), 2),
        "macro_recall": round(100 * float(np.mean(recalls)), 2),
        "macro_f1": round(100 * float(np.mean(f1s)), 2),
        "per_class": per_class,
        "confusion": {"rows_gold_cols_pred": list(LABELS), "matrix": confusion},
        "n": len(gold),
    }


def expected_calibration_error(
    probs: np.ndarray, gold: np.ndarray, bins: int = 15
) -> float:
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


def fit_temperature(logp: np.ndarray, gold: np.ndarray) -> float:
    """The softmax temperature minimising the NLL of ``gold`` (grid, step 0.01)."""

    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(gold)), gold] - np.log(np.exp(z).sum(1))).mean())

    grid = np.arange(0.3, 5.0, 0.01)
    return float(grid[int(np.argmin([nll(t) for t in grid]))])


def _with_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1)) / t
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluate(
    model_dir: Path,
    data_dir: Path,
    *,
    work_dir: Path,
    train_config: TrainConfig,
    limit: int | None = None,
) -> dict[str, Any]:
    """Measure int8 and fp32, calibrate, write metrics and the model card.

    Args:
        model_dir: The exported model directory (int8 ``model.onnx``).
        data_dir: The shared data directory.
        work_dir: The training work directory (fp32 graph).
        train_config: The settings the model was trained with.
        limit: Only the first ``limit`` rows of each split (smoke runs).

    Returns:
        The metrics written to ``metrics.json``.
    """
    meta_path = model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["temperature"] = 1.0
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    int8 = Scorer(model_dir, threads=2)
    fp32 = Scorer(
        model_dir,
        threads=2,
        onnx_file=str((work_dir / "model.fp32.fused.onnx").resolve()),
    )
    raw: dict[str, dict[str, np.ndarray]] = {}
    timings: dict[str, float] = {}
    trained_on = set(PROFILES[train_config.profile])
    eval_sets = [(n, s) for n, s in EVAL_SETS if f"{n}/{s}" not in trained_on]
    for name, split in eval_sets:
        rows = load_split(data_dir, name, split)[:limit]
        texts = [t for t, _ in rows]
        key = f"{name}/{split}"
        raw[key] = {"gold": np.array([y for _, y in rows])}
        for label, scorer in (("int8", int8), ("fp32", fp32)):
            started = time.perf_counter()
            raw[key][label] = scorer.predict_proba(texts)
            timings[f"{key}/{label}"] = time.perf_counter() - started
            logger.info("%s %s done in %.1fs", key, label, timings[f"{key}/{label}"])

    baseline_results: dict[str, dict[str, object]] = {}
    for name, split in eval_sets:
        key = f"{name}/{split}"
        binary = not DATASETS[name].ternary
        texts = [t for t, _ in load_split(data_dir, name, split)[:limit]]
        baseline_results[key] = {}
        for base, (score_fn, band) in BASELINES.items():
            pred = to_labels(score_fn(texts), band, binary=binary)
            baseline_results[key][base] = label_metrics(pred, raw[key]["gold"], binary)

    cal = [f"{n}/{s}" for n, s in CALIBRATION_SETS]
    temperature = fit_temperature(
        np.log(np.clip(np.concatenate([raw[k]["int8"] for k in cal]), 1e-12, 1)),
        np.concatenate([raw[k]["gold"] for k in cal]),
    )
    results: dict[str, object] = {}
    for key, r in raw.items():
        binary = not DATASETS[key.split("/")[0]].ternary
        results[key] = compare(
            _with_temperature(r["int8"], temperature),
            _with_temperature(r["fp32"], temperature),
            r["gold"],
            binary,
        ) | {"baselines": baseline_results[key]}
    meta["temperature"] = round(temperature, 4)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    report = {
        "model": f"{meta['name']}-{meta['version']}",
        "temperature": meta["temperature"],
        "train_config": asdict(train_config),
        "training_mix": PROFILES[train_config.profile],
        "training_summary": _read_json(work_dir / "train_summary.json"),
        "sets": results,
        "eval_seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    report["gate"] = quantization_gate(results)
    (model_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    from core.scoring.training.card import write_model_card

    write_model_card(model_dir, report, work_dir=work_dir)
    return report


def compare(
    int8: np.ndarray, fp32: np.ndarray, gold: np.ndarray, binary: bool
) -> dict[str, object]:
    """Metrics of both models on one split and how often their labels agree."""
    return {
        "int8": _metrics(int8, gold, binary),
        "fp32": _metrics(fp32, gold, binary),
        "int8_fp32_agreement": round(
            100 * float((int8.argmax(1) == fp32.argmax(1)).mean()), 2
        ),
    }


def dev_rows(
    data_dir: Path, train_config: TrainConfig, limit: int | None = None
) -> dict[str, list[tuple[str, int]]]:
    """Every dev split the gate checks (those the profile does not train on)."""
    trained_on = set(PROFILES[train_config.profile])
    return {
        f"{n}/{s}": load_split(data_dir, n, s)[:limit]
        for n, s in EVAL_SETS
        if s == "dev" and f"{n}/{s}" not in trained_on
    }


def gate_labels(
    int8: Scorer,
    dev: dict[str, list[tuple[str, int]]],
    fp32_probs: dict[str, np.ndarray],
) -> dict[str, object]:
    """Run the quantization gate on the dev splits alone, before ``evaluate``.

    The export tries several quantization plans; this measures one int8 model
    against fp32 probabilities computed once. Every gated number is an argmax
    (accuracy, macro recall and F1, agreement), so the temperature ``evaluate``
    fits afterwards cannot change the verdict.
    """
    results = {
        key: compare(
            int8.predict_proba([t for t, _ in rows]),
            fp32_probs[key],
            np.array([y for _, y in rows]),
            not DATASETS[key.split("/")[0]].ternary,
        )
        for key, rows in dev.items()
    }
    return quantization_gate(results)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


GATE_MAX_LOSS = 0.5
"""Points the int8 model may lose against fp32 on any dev metric."""

GATE_MIN_AGREEMENT = 98.0
"""Percent of dev labels on which int8 and fp32 must agree."""

GATE_METRICS = ("accuracy", "macro_recall", "macro_f1")


def quantization_gate(results: dict[str, Any]) -> dict[str, object]:
    """Check int8 against fp32 on every dev split and print the comparison.

    Returns:
        ``{"passed": bool, "failures": [...]}``.
    """
    failures: list[str] = []
    print(f"{'dev split':28s} {'metric':13s} {'fp32':>7s} {'int8':>7s} {'agree':>7s}")
    for key, r in results.items():
        if not key.endswith("/dev"):
            continue
        agree = r["int8_fp32_agreement"]
        for metric in GATE_METRICS:
            fp, q = r["fp32"][metric], r["int8"][metric]
            print(f"{key:28s} {metric:13s} {fp:7.2f} {q:7.2f} {agree:7.2f}")
            if fp - q > GATE_MAX_LOSS:
                failures.append(f"{key} {metric}: int8 {q} vs fp32 {fp}")
        if r["int8_fp32_agreement"] < GATE_MIN_AGREEMENT:
            failures.append(f"{key}: int8/fp32 agreement {r['int8_fp32_agreement']}%")
    print("int8 gate:", "PASSED" if not failures else "FAILED: " + "; ".join(failures))
    return {"passed": not failures, "failures": failures}
