"""Command line of the training pipeline: ``python -m core.scoring.training``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from core.scoring.training.config import TrainConfig
from core.scoring.training.quantization import QUANT_PLANS, plan_named

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
"""The shared datasets, read in place (never copied into the repo)."""


SHIPPED_FILES = (
    "model.onnx",
    "tokenizer.json",
    "model.json",
    "metrics.json",
    "MODEL_CARD.md",
)
"""What goes into ``models/<name>-<version>/``."""


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run train, export and evaluate in turn."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m core.scoring.training")
    parser.add_argument("stage", choices=["train", "export", "evaluate", "all"])
    parser.add_argument("--profile", default="full")
    parser.add_argument("--name", default="tonehub-sentiment")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--init-from", default=None, help="continue from this model")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("TONEHUB_DATA_DIR", DEFAULT_DATA_DIR)),
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=REPO / "models",
        help="where a model that passes the gate is written",
    )
    parser.add_argument("--limit", type=int, default=None, help="rows per split")
    parser.add_argument(
        "--quant-plan",
        choices=[p.name for p in QUANT_PLANS],
        default=None,
        help="quantize only this way (default: try each, fastest first)",
    )
    args = parser.parse_args(argv)

    from core.scoring.training.train import train

    work = args.work_dir or REPO / "var" / "training" / f"{args.name}-{args.version}"
    out = args.models_dir / f"{args.name}-{args.version}"
    cfg = TrainConfig(
        profile=args.profile,
        epochs=args.epochs,
        learning_rate=args.lr,
        init_from=args.init_from,
    )
    if args.stage in ("train", "all"):
        train(args.data_dir, work, cfg)
    saved = work / "train_config.json"
    if saved.exists():  # export/evaluate describe the run as it was trained
        cfg = TrainConfig(**json.loads(saved.read_text()))
    from core.scoring.training.evaluate import evaluate

    if args.stage in ("export", "all"):
        # Export and measure in a staging directory; models/ changes only when the
        # int8 model passes the quantization gate.
        staging = export_gated(args, work, cfg)
        report = evaluate(
            staging, args.data_dir, work_dir=work, train_config=cfg, limit=args.limit
        )
        if not report["gate"]["passed"]:
            sys.exit(f"int8 gate failed; {out} left unchanged (see {staging})")
        out.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED_FILES:
            shutil.copy(staging / name, out / name)
        print(f"Model written to {out}")
    elif args.stage == "evaluate":
        if not (work / "model.fp32.fused.onnx").exists():
            sys.exit(
                f"{work}/model.fp32.fused.onnx is missing: evaluation compares int8 "
                "with the fp32 graph of the training run; run the export (make model) "
                "first"
            )
        report = evaluate(
            out, args.data_dir, work_dir=work, train_config=cfg, limit=args.limit
        )
        if not report["gate"]["passed"]:
            sys.exit("int8 gate failed")


def export_gated(args: argparse.Namespace, work: Path, cfg: TrainConfig) -> Path:
    """Export fp32, then quantize plan by plan until one passes the gate on dev.

    Returns:
        The staging directory holding the int8 model of the first passing plan.
        Exits when none passes (``models/`` is left unchanged).
    """
    from core.scoring.engine import Scorer
    from core.scoring.training.evaluate import dev_rows, gate_labels
    from core.scoring.training.export import export_fp32, quantize, write_package

    staging = work / "export"
    fused = export_fp32(work / "final", work)
    plans = [plan_named(args.quant_plan)] if args.quant_plan else list(QUANT_PLANS)
    dev = dev_rows(args.data_dir, cfg, args.limit)
    fp32_probs = None
    for plan in plans:
        quantize(fused, staging, plan)
        write_package(
            work / "final",
            staging,
            name=args.name,
            version=args.version,
            plan=plan,
            work_dir=work,
        )
        if fp32_probs is None:
            fp32 = Scorer(staging, threads=2, onnx_file=str(fused.resolve()))
            fp32_probs = {
                k: fp32.predict_proba([t for t, _ in rows]) for k, rows in dev.items()
            }
        print(f"quantization plan {plan.name}: {plan.description}")
        gate = gate_labels(Scorer(staging, threads=2), dev, fp32_probs)
        if gate["passed"]:
            return staging
    sys.exit(f"no quantization plan passed the int8 gate (last one is in {staging})")


if __name__ == "__main__":
    main()
