"""``make loadtest``: single short texts at increasing rates against the
service as ``make run`` starts it (gunicorn with deploy/gunicorn.conf.py,
embedded Redis, SQLite, the RQ worker and scheduler), once per gunicorn
setting, all in one run so the ratios compare.

The load comes from wrk (Debian's package) on loopback, connections each
paced by ``delay()`` (with jitter) to about four requests a second, every
request a distinct text
(no result-cache hits), spread over 4 workspaces on the pro plan, so
that what is measured is the API path with metering and the model. When the
service cannot keep up, paced connections fall behind: the achieved rate
drops below the target and the latency climbs; the knee is the last step
that still achieved >= 90% of its target with p95 under 250 ms.

Usage: ``python scripts/loadtest.py [--seconds 10] [--rates 10,25,...]
[--configs 1x1,1x2,2x1,2x2] [--out docs/loadtest.md]``; a config ``WxT``
is gunicorn workers x threads (onnxruntime threads per worker: cores //
workers). The machine's other load shows in the numbers: compare within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts._demo import Service  # noqa: E402

PER_CONNECTION = 4.0
"""Requests a second each connection is paced to: wrk is closed-loop (a
connection waits for its answer, then ``delay()``), so slow pacing keeps the
answer time a small part of the cycle and the offered rate near the target."""
WORKSPACES = 4
"""Pro workspaces the load is spread over (200 requests/s each), so that
the plan's rate limit is never what the test measures."""
KNEE_SHARE = 0.9
KNEE_P95_MS = 250.0


@dataclass
class Step:
    """One rate step's outcome."""

    target: int
    achieved: float
    p50: float
    p95: float
    p99: float
    errors: int
    requests: int


def _wrk(url: str, keys: list[str], rate: int, seconds: int) -> Step:
    connections = max(4, round(rate / PER_CONNECTION))
    pause_ms = max(1, round(connections * 1000 / rate))
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "scripts" / "loadtest.lua"),
            url,
            "--",
            str(pause_ms),
            str(connections),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TONEHUB_KEYS": ",".join(keys)},
        timeout=seconds + 60,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Step(
        target=rate,
        achieved=r["requests"] / (r["duration_us"] / 1e6),
        p50=r["p50_us"] / 1000,
        p95=r["p95_us"] / 1000,
        p99=r["p99_us"] / 1000,
        errors=errors,
        requests=r["requests"],
    )


def run_config(
    workers: int, threads: int, rates: list[int], seconds: int
) -> list[Step]:
    """Start the service with this setting, warm it up, run every step."""
    service = Service.start(
        f"load-{workers}x{threads}",
        {
            "TONEHUB_WEB_WORKERS": str(workers),
            "TONEHUB_WEB_THREADS": str(threads),
            "TONEHUB_LOG_LEVEL": "WARNING",
        },
    )
    try:
        service.dev_key()
        service.wait_ready()
        keys = service.issue_keys(WORKSPACES, "pro")
        url = service.base + "/v1/sentiment"
        _wrk(url, keys, 20, 3)  # warm-up: connections, first model calls
        steps = []
        for rate in rates:
            step = _wrk(url, keys, rate, seconds)
            steps.append(step)
            print(
                f"  {workers}x{threads} target {rate:>4}/s: {step.achieved:6.1f}/s "
                f"p50 {step.p50:6.1f} p95 {step.p95:6.1f} p99 {step.p99:7.1f} ms "
                f"errors {step.errors}",
                flush=True,
            )
            time.sleep(1)
        return steps
    finally:
        service.stop()


def knee(steps: list[Step]) -> Step | None:
    """The last step that kept up (rate reached, p95 bounded)."""
    good = None
    for step in steps:
        if step.achieved >= KNEE_SHARE * step.target and step.p95 <= KNEE_P95_MS:
            good = step
        else:
            break
    return good


def table(results: dict[str, list[Step]], seconds: int) -> str:
    cores = len(os.sched_getaffinity(0))
    lines = [
        f"Load test: {seconds} s per step, wrk -t1, a connection per 4 requests/s "
        "of the target, paced with jitter; distinct "
        f"short texts, pro plan, {cores} cores shared by wrk and the service; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| gunicorn workers x threads (ORT threads) | target/s | achieved/s | "
        "p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, steps in results.items():
        workers = int(name.split("x")[0])
        ort = max(1, cores // workers)
        for s in steps:
            lines.append(
                f"| {name} ({ort}) | {s.target} | {s.achieved:.1f} | {s.p50:.1f} | "
                f"{s.p95:.1f} | {s.p99:.1f} | {s.errors} |"
            )
    lines += [
        "",
        "| setting | knee (last step kept up) | throughput there |",
        "|---|---|---|",
    ]
    for name, steps in results.items():
        k = knee(steps)
        lines.append(
            f"| {name} | {k.target}/s | {k.achieved:.1f}/s, p95 {k.p95:.1f} ms |"
            if k
            else f"| {name} | below {steps[0].target}/s | - |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--rates", default="50,100,200,300,400,500,600")
    parser.add_argument("--configs", default="1x1,1x2,2x1,2x2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    rates = [int(r) for r in args.rates.split(",")]
    results: dict[str, list[Step]] = {}
    for config in args.configs.split(","):
        workers, threads = (int(x) for x in config.split("x"))
        results[config] = run_config(workers, threads, rates, args.seconds)
    report = table(results, args.seconds)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
