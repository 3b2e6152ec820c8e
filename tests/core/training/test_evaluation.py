"""Pieces of the training pipeline that need no torch: data, metrics, gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.scoring.training.baselines import to_labels
from core.scoring.training.data import detokenize_ptb, load_split
from core.scoring.training.evaluate import (
    compare,
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


def test_target_rows_judge_each_goal() -> None:
    from core.scoring.training.card import target_rows

    def split(acc: float, ece: float, vader: float) -> dict[str, object]:
        return {
            "int8": {"accuracy": acc, "macro_recall": acc - 1, "ece": ece},
            "baselines": {"vader": {"accuracy": vader}, "textblob": {"accuracy": 50.0}},
        }

    report = {
        "sets": {
            "sst2/dev": split(90.5, 2.0, 63.0),
            "airline/dev": split(81.0, 6.0, 72.0),
            "tweeteval_sentiment/test": split(69.5, 4.0, 55.0),
        }
    }
    rows = {title: (value, met) for title, _, value, met in target_rows(report)}
    assert rows["SST-2 dev binary accuracy"] == ("90.50", True)
    assert rows["TweetEval test macro recall"] == ("68.50", True)
    assert rows["airline dev accuracy"] == ("81.00", False)
    assert rows["airline/dev ECE"] == ("6.00", False)
    assert rows["sst2/dev accuracy over the better of VADER/TextBlob"] == (
        "+27.50",
        True,
    )
    assert rows["airline/dev accuracy over the better of VADER/TextBlob"] == (
        "+9.00",
        False,
    )
    # Test splits are held to the accuracy targets only.
    assert not any(t.startswith("tweeteval_sentiment/test ") for t in rows)


def test_compare_counts_label_agreement_on_the_ternary_argmax() -> None:
    fp32 = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]]
    )
    int8 = fp32.copy()
    int8[3] = [0.3, 0.6, 0.1]  # flips one label: negative -> neutral
    gold = np.array([0, 1, 2, 0])
    result = compare(int8, fp32, gold, binary=False)
    assert result["int8_fp32_agreement"] == 75.0
    assert result["fp32"]["accuracy"] == 100.0
    assert result["int8"]["accuracy"] == 75.0
