"""The whole training pipeline on the ``quick`` mix: train, export, gate, evaluate.

Slow (about five minutes on 2 cores) and needs ``requirements-train.txt``:
``.venv/bin/pytest -m slow tests/core/training``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.scoring.engine import Scorer
from core.scoring.labels import Sentiment

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("TONEHUB_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_profile_trains_exports_and_passes_the_gate(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    if not (DATA / "sst2").is_dir():
        pytest.skip(f"no datasets in {DATA}")
    models = tmp_path / "models"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.scoring.training",
            "all",
            "--name",
            "smoke",
            "--version",
            "0.0.1",
            "--profile",
            "quick",
            "--work-dir",
            str(tmp_path / "work"),
            "--models-dir",
            str(models),
            "--limit",
            "300",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "quantization plan int8-blockwise" in result.stdout
    assert "int8 gate: PASSED" in result.stdout
    out = models / "smoke-0.0.1"
    assert sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD.md",
        "metrics.json",
        "model.json",
        "model.onnx",
        "tokenizer.json",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["gate"] == {"passed": True, "failures": []}
    assert metrics["sets"]["sst2/dev"]["int8"]["n"] == 300
    # Fitted, not the 1.0 the export writes before evaluation.
    temperature = json.loads((out / "model.json").read_text())["temperature"]
    assert temperature == metrics["temperature"] != 1.0
    assert (
        "plan int8-blockwise"
        in json.loads((out / "model.json").read_text())["quantization"]
    )
    assert "Against the targets" in (out / "MODEL_CARD.md").read_text()
    scorer = Scorer(out)
    assert scorer.score("I love it, thank you so much!").label is Sentiment.POSITIVE
    assert scorer.score("Terrible. It broke again, I hate it.").label is (
        Sentiment.NEGATIVE
    )
