"""``make bench``: our engine against PyTorch eager, the transformers pipeline,
ORT fp32 and VADER, in one run on this machine.

Speed does not depend on the weights, so when the fine-tuned Hugging Face model
of ``make model`` is not in ``var/training/`` the PyTorch rows use the base
MiniLM-L6 with a fresh 3-way head: the same graph, the same cost.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.config import DEFAULT_MODEL, DEFAULT_MODEL_DIR, REPO_ROOT

SHORT = [
    "Thanks, the update fixed my login problem!",
    "Still waiting for a reply from your team.",
    "The invoice for March is attached to this ticket.",
    "This app keeps crashing every time I open it.",
]
"""~12-16 tokens each."""

MEDIUM = [
    "I contacted support on Monday about the billing error on my account and, after "
    "two follow-ups and a long phone call, the duplicate charge was finally reversed "
    "today, which I appreciate, although it should not have taken a whole week.",
    "The new dashboard looks cleaner than the old one, but the export button moved "
    "and our team spent half a morning looking for it before someone found it under "
    "the settings menu; a short note in the release email would have saved us time.",
]
"""~55-65 tokens each."""

Runner = Callable[[Sequence[str]], object]

RSS_GOAL_MB = 250
"""Peak resident memory allowed for a process holding the engine."""


def measure(
    run: Runner, texts: Sequence[str], batch: int, seconds: float
) -> dict[str, float]:
    """Call ``run`` on batches for ``seconds``; texts/s and latency percentiles."""
    run(list(texts[:batch]) or list(texts))  # warm-up
    latencies: list[float] = []
    i = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(latencies) < 5:
        chunk = [texts[(i + k) % len(texts)] for k in range(batch)]
        start = time.perf_counter()
        run(chunk)
        latencies.append(time.perf_counter() - start)
        i += batch
    latencies.sort()
    return {
        "texts_per_s": batch * len(latencies) / sum(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


def engines(threads: int) -> dict[str, Runner]:
    """Build every engine under test (torch ones only if torch is installed)."""
    from core.scoring.engine import Scorer

    ours = Scorer(DEFAULT_MODEL_DIR, threads=threads)
    out: dict[str, Runner] = {"tonehub (tokenizers + ORT int8)": ours.score_batch}
    work = REPO_ROOT / "var" / "training" / DEFAULT_MODEL
    fp32_graph = work / "model.fp32.fused.onnx"
    if fp32_graph.exists():
        fp32 = Scorer(DEFAULT_MODEL_DIR, threads=threads, onnx_file=str(fp32_graph))
        out["ORT fp32 (same engine)"] = fp32.score_batch
    out.update(_torch_engines(work / "final", threads))
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    out["VADER"] = lambda texts: [vader.polarity_scores(t) for t in texts]
    return out


def _torch_engines(hf_dir: Path, threads: int) -> dict[str, Runner]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TextClassificationPipeline,
    )

    from core.scoring.training.train import base_model_path

    torch.set_num_threads(threads)
    source = str(hf_dir) if (hf_dir / "config.json").exists() else base_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=3
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)

    def eager(texts: Sequence[str]) -> object:
        with torch.inference_mode():
            enc = tokenizer(
                list(texts), padding=True, truncation=True, return_tensors="pt"
            )
            return model(**enc).logits.softmax(-1)

    pipe = TextClassificationPipeline(model=model, tokenizer=tokenizer, top_k=None)
    return {
        "PyTorch eager fp32": eager,
        "transformers pipeline": lambda texts: pipe(list(texts), batch_size=len(texts)),
    }


def peak_rss_of_engine_process() -> float:
    """Peak RSS (MB) of a fresh process that loads the engine and scores texts."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
    code = (
        "from core.config import DEFAULT_MODEL_DIR\n"
        "from core.scoring.engine import Scorer\n"
        "s = Scorer(DEFAULT_MODEL_DIR)\n"
        f"s.score_batch({SHORT * 8 + MEDIUM * 8!r})\n"
        "s.score(' '.join(['A long text with many sentences.'] * 2000))\n"
        "s.score('Fine. ' * 900, sentences=True)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) / 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Run all engines on all cases and print the table and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m core.scoring.training.bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    cases = [
        ("short b1", SHORT, 1),
        ("short b32", SHORT, 32),
        ("medium b1", MEDIUM, 1),
        ("medium b32", MEDIUM, 32),
    ]
    print(f"{args.threads} thread(s) per engine, {args.seconds:.0f} s per cell")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, run in engines(args.threads).items():
        table[name] = {c: measure(run, texts, b, args.seconds) for c, texts, b in cases}
        gc.collect()
        cells = "  ".join(
            f"{c}: {r['texts_per_s']:7.1f}/s "
            f"p50 {r['p50_ms']:6.1f} p95 {r['p95_ms']:6.1f} ms"
            for c, r in table[name].items()
        )
        print(f"{name:34s} {cells}")
    ours = table["tonehub (tokenizers + ORT int8)"]
    eager = table.get("PyTorch eager fp32")
    if eager:
        print("\nSpeed-up of tonehub over PyTorch eager (texts/s ratio):")
        for c in ours:
            ratio = ours[c]["texts_per_s"] / eager[c]["texts_per_s"]
            print(f"  {c:11s} {ratio:5.1f}x")
    rss = peak_rss_of_engine_process()
    print(f"\nPeak RSS of a process holding the engine: {rss:.0f} MB")
    print(f"(goal: <= {RSS_GOAL_MB} MB)")


if __name__ == "__main__":
    main()
