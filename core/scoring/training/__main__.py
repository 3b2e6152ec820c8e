"""Command line of the training pipeline: ``python -m core.scoring.training``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
"""The shared datasets, read in place (never copied into the repo)."""


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
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("TONEHUB_DATA_DIR", DEFAULT_DATA_DIR)),
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    from core.scoring.training.train import TrainConfig, train

    work = args.work_dir or REPO / "var" / "training" / f"{args.name}-{args.version}"
    out = REPO / "models" / f"{args.name}-{args.version}"
    cfg = TrainConfig(profile=args.profile, epochs=args.epochs)
    if args.stage in ("train", "all"):
        train(args.data_dir, work, cfg)
    if args.stage in ("export", "all"):
        from core.scoring.training.export import export

        export(work / "final", out, name=args.name, version=args.version, work_dir=work)
    if args.stage in ("evaluate", "all"):
        from core.scoring.training.evaluate import evaluate

        evaluate(out, args.data_dir, work_dir=work, train_config=cfg)


if __name__ == "__main__":
    main()
