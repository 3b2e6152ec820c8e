"""``make demo-jobs``: a 10,000-text batch job end to end on this machine.

Starts a webhook receiver (tests/fakes/webhook_receiver.py, which verifies
Standard Webhooks signatures itself) and the service as ``make run`` starts it;
subscribes the receiver to ``job.succeeded``; submits 10,000 texts with ids
over ``POST /v1/jobs``; polls the job and prints its progress while it runs;
downloads the results as JSONL and checks them against synchronous scoring
(``/v1/sentiment/batch``) of a sample; and waits for the signed
``job.succeeded``, which the receiver first answers with a 503 so that the
retry on the spec's schedule (5 s later) is what gets it. Exits non-zero when
any check fails.
"""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts._demo import Service, report  # noqa: E402
from tests.fakes.webhook_receiver import Answer, WebhookReceiver  # noqa: E402

TEXTS = 10_000
SAMPLE = 300
"""Texts also scored synchronously to compare with the job's results."""

_OPENERS = ["", "Honestly, ", "Update: ", "FYI ", "Well, ", "Again: ", "Hi team, "]
_SUBJECTS = [
    "the app",
    "your support",
    "the invoice",
    "the new release",
    "checkout",
    "the delivery",
    "the refund",
    "our account manager",
    "the dashboard",
    "the API",
]
_VERDICTS = [
    "works perfectly",
    "is broken again",
    "was fine",
    "is a total mess",
    "saved us hours",
    "keeps crashing",
    "arrived on Tuesday",
    "is slower than last week",
    "made my day",
    "needs a restart",
]
_ENDINGS = [".", "!", "?", " :)", " :(", ". Thanks.", ". Not happy.", ". ok"]


def texts(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct, varied support-style texts (no cache hits)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        text = (
            f"{rng.choice(_OPENERS)}{rng.choice(_SUBJECTS)} "
            f"{rng.choice(_VERDICTS)}{rng.choice(_ENDINGS)} #{len(out)}"
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _call(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return raw if path.endswith("format=jsonl") else json.loads(raw or b"null")


def _poll(base: str, key: str, job_id: str) -> tuple[dict[str, Any], int]:
    """Poll until the job ends; returns it and how many polls saw it midway."""
    midway = 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        job = _call(base, key, "GET", f"/v1/jobs/{job_id}")
        p = job["progress"]
        print(f"  {job['status']:<9} {p['done']:>6}/{p['total']} ({p['percent']:.0f}%)")
        if 0 < p["done"] < p["total"]:
            midway += 1
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job, midway
        time.sleep(3)
    raise SystemExit("the job did not finish in 15 minutes")


def _compare(base: str, key: str, sample: list[str], got: list[dict]) -> int:
    """Synchronous results of the sample; returns how many labels match."""
    same = 0
    for start in range(0, len(sample), 100):
        batch = _call(
            base,
            key,
            "POST",
            "/v1/sentiment/batch",
            {"texts": sample[start : start + 100]},
        )["results"]
        for sync, job in zip(batch, got[start : start + 100], strict=True):
            same += sync["label"] == job["label"]
            if abs(sync["score"] - job["score"]) > 0.05:
                print(f"  score differs: {sync['score']} vs {job['score']}")
                return -1
    return same


def main() -> int:
    receiver = WebhookReceiver()
    receiver.start()
    service = Service.start("jobs", {"TONEHUB_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"})
    base = service.base
    print(f"Webhook receiver on {receiver.url}; Tonehub on {base}")
    try:
        service.dev_key()  # make run's set-up is done
        service.wait_ready()
        # A pro workspace: the comparison calls fit next to the 10,000 (basic's quota).
        [key] = service.issue_keys(1, "pro")
        hook = _call(
            base,
            key,
            "POST",
            "/v1/webhooks",
            {"url": receiver.url + "/tonehub", "event_types": ["job.succeeded"]},
        )
        receiver.secrets = [hook["secret"]]
        receiver.plan.append(Answer(503, body=b"busy"))  # the first attempt fails
        corpus = texts(TEXTS)
        ids = [f"row-{i}" for i in range(TEXTS)]
        started = time.monotonic()
        job = _call(base, key, "POST", "/v1/jobs", {"texts": corpus, "ids": ids})
        print(f"  submitted {job['id']}: {job['units']['reserved']} units reserved")
        job, midway = _poll(base, key, job["id"])
        elapsed = time.monotonic() - started
        print(f"  {job['status']} in {elapsed:.0f} s ({TEXTS / elapsed:.0f} texts/s)")
        lines = _call(base, key, "GET", f"/v1/jobs/{job['id']}/results?format=jsonl")
        rows = [json.loads(line) for line in lines.splitlines() if line.strip()]
        same = _compare(base, key, corpus[:SAMPLE], rows[:SAMPLE])
        print(f"  sample of {SAMPLE}: {same} labels as synchronous scoring")
        deliveries = receiver.wait_for(2, timeout=60)
        got = [d for d in deliveries if d.event.get("type") == "job.succeeded"]
        gap = got[1].received_at - got[0].received_at if len(got) >= 2 else 0.0
        print(
            f"  job.succeeded: {len(got)} attempts, retried after {gap:.1f} s, "
            f"verified={[d.verified for d in got]}"
        )
        checks = {
            "job succeeded": job["status"] == "succeeded",
            "progress visible while it ran": midway >= 1,
            "every result, in input order, with ids": len(rows) == TEXTS
            and [r.get("id") for r in rows] == ids
            and all("label" in r for r in rows),
            "results match synchronous scoring": same == SAMPLE,
            "units used = texts": job["units"]["used"] == TEXTS,
            "job.succeeded retried on schedule and verified": len(got) == 2
            and got[-1].verified
            and got[-1].event["data"]["job_id"] == job["id"]
            and 4.0 <= gap <= 30.0,
        }
        return report(checks)
    finally:
        service.stop()
        receiver.stop()


if __name__ == "__main__":
    raise SystemExit(main())
