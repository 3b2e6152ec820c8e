"""Pieces of the training pipeline that need no torch: data, metrics, gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.scoring.training.baselines import to_labels
from core.scoring.training.data import detokenize_ptb, load_split
from core.scoring.training.evaluate import (
    expected_calibration_error,
    fit_temperature,
    label_metrics,
    quantization_gate,
)


def test_detokenize_ptb() -> None:
    assert detokenize_ptb("it 's a charming , funny movie . ") == (
        "it's a charming, funny movie."
    )
    assert detokenize_ptb("does n't work -LRB- really -RRB- 8 1\\/2") == (
        "doesn't work (really) 8 1/2"
    )


def test_load_split_drops_mixed(tmp_path: Path) -> None:
    (tmp_path / "dynasent_r1").mkdir()
    rows = [
        {"text": "good", "label": "positive"},
        {"text": "meh", "label": "mixed"},
        {"text": "bad", "label": "negative"},
    ]
    (tmp_path / "dynasent_r1" / "dev.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n"
    )
    assert load_split(tmp_path, "dynasent_r1", "dev") == [("good", 2), ("bad", 0)]


def test_label_metrics_by_hand() -> None:
    gold = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = label_metrics(pred, gold, binary=False)
    assert m["accuracy"] == pytest.approx(100 * 4 / 6, abs=0.01)
    # recalls: neg 1/2, neu 2/2, pos 1/2 -> 66.67
    assert m["macro_recall"] == pytest.approx(66.67, abs=0.01)
    assert m["per_class"]["neutral"]["precision"] == pytest.approx(66.67, abs=0.01)
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_binary_metrics_ignore_neutral_class() -> None:
    m = label_metrics(np.array([0, 2, 2]), np.array([0, 2, 0]), binary=True)
    assert set(m["per_class"]) == {"negative", "positive"}
    assert m["macro_recall"] == pytest.approx(75.0)


def test_ece_and_temperature() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 4000)
    logits = rng.normal(size=(4000, 3))
    logits[np.arange(4000), gold] += 1.0
    # Over-confident logits: a temperature above 1 should be fitted and help.
    sharp = logits * 4
    t = fit_temperature(sharp, gold)
    assert 3.0 < t < 5.0

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    before = expected_calibration_error(softmax(sharp), gold)
    after = expected_calibration_error(softmax(sharp / t), gold)
    assert after < 0.03 < before


def test_gate() -> None:
    ok = {"accuracy": 90.0, "macro_recall": 89.0, "macro_f1": 88.0}
    lossy = {"accuracy": 89.4, "macro_recall": 89.0, "macro_f1": 88.0}
    results = {
        "a/dev": {"fp32": ok, "int8": ok, "int8_fp32_agreement": 99.0},
        "b/test": {"fp32": ok, "int8": lossy, "int8_fp32_agreement": 90.0},
    }
    assert quantization_gate(results)["passed"]
    results["c/dev"] = {"fp32": ok, "int8": lossy, "int8_fp32_agreement": 97.9}
    failures = quantization_gate(results)["failures"]
    assert failures == [
        "c/dev accuracy: int8 89.4 vs fp32 90.0",
        "c/dev: int8/fp32 agreement 97.9%",
    ]


def test_baseline_label_mapping() -> None:
    scores = np.array([-0.5, -0.01, 0.0, 0.04, 0.3])
    assert to_labels(scores, 0.05, binary=False).tolist() == [0, 1, 1, 1, 2]
    assert to_labels(scores, 0.05, binary=True).tolist() == [0, 0, 2, 2, 2]
