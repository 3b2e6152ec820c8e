"""``/v1/jobs`` end to end: the real app, a real queue and in-process workers,
results against synchronous scoring, quota reservation and release, a worker
killed with SIGKILL mid-job, and the signed ``job.succeeded`` webhook."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from core.config import Settings
from core.jobs import runner
from core.jobs.service import purge_expired
from core.persistence.db import make_engine, make_session_factory
from core.persistence.models import (
    BatchJob,
    BatchJobItem,
    UsageDaily,
    UsageFlush,
    WebhookDelivery,
)
from tests.conftest import _close_app, _make_app, add_ledger_usage
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.webapp.conftest import check_against_spec
from workers import runtime
from workers.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE

TEXTS = [
    "Thanks so much, the fix worked perfectly!",
    "Still broken after three days. Useless support.",
    "The meeting is at 3pm on Tuesday.",
    "I love the new dashboard, great job team",
    "Refund me now, this is a scam.",
    "Our order number is 4471.",
]


@pytest.fixture
def api(jobs_app):
    return jobs_app.test_client()


@pytest.fixture
def auth(jobs_app) -> dict[str, str]:
    from tests.conftest import ApiKeyActions

    _, _, secret = ApiKeyActions(jobs_app).issue()
    return {"Authorization": f"Bearer {secret}"}


def _work(redis: Redis) -> None:
    queues = [Queue(n, connection=redis) for n in (DEFAULT_QUEUE, WEBHOOK_QUEUE)]
    SimpleWorker(queues, connection=redis).work(burst=True)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()["error"]
    assert body["code"] == code
    return body


def _ws(jobs_app, auth) -> str:
    from core.accounts import hash_key

    secret = auth["Authorization"].split()[1]
    with jobs_app.extensions["tonehub"].sessions() as s:
        from core.persistence.models import ApiKey

        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
        return key.workspace_id


def _all_results(api, auth, job_id: str, limit: int = 100) -> list[dict]:
    out: list[dict] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(
            f"/v1/jobs/{job_id}/results?offset={offset}&limit={limit}", headers=auth
        )
        assert page.status_code == 200, page.get_data(as_text=True)
        body = page.get_json()
        out += body["results"]
        offset = body["next_offset"]
    return out


def test_a_job_scores_like_the_synchronous_api(jobs_app, api, auth, redis) -> None:
    texts = [f"{t} (#{i})" for i in range(50) for t in TEXTS]  # 300 distinct
    ids = [f"t-{i}" for i in range(len(texts))]
    created = api.post("/v1/jobs", json={"texts": texts, "ids": ids}, headers=auth)
    assert created.status_code == 202, created.get_data(as_text=True)
    job = created.get_json()
    assert created.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["units"]["reserved"] == 300
    assert created.headers["X-Quota-Used"] == "300"  # reserved up front
    _work(redis)
    status = api.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()
    assert status["status"] == "succeeded"
    assert status["progress"] == {
        "total": 300,
        "scored": 300,
        "invalid": 0,
        "done": 300,
        "percent": 100.0,
    }
    assert status["started_at"] and status["finished_at"] and status["expires_at"]
    results = _all_results(api, auth, job["id"])
    assert [r["index"] for r in results] == list(range(300))
    assert [r["id"] for r in results] == ids
    # The same texts through /v1/sentiment/batch, with the result cache empty
    # so the model really runs again.
    for key in redis.scan_iter("th:cache:*"):
        redis.delete(key)
    sync: list[dict] = []
    for start in range(0, 300, 100):
        got = api.post(
            "/v1/sentiment/batch",
            json={"texts": texts[start : start + 100]},
            headers=auth,
        )
        assert got.status_code == 200
        sync += got.get_json()["results"]
    assert [r["label"] for r in results] == [r["label"] for r in sync]
    # Dynamic int8 quantizes activations per call, so batch-mates move a
    # score by a few hundredths (README, "The model"); labels do not move.
    diffs = sorted(
        abs(a["score"] - b["score"]) for a, b in zip(results, sync, strict=True)
    )
    assert diffs[-1] < 0.1 and diffs[len(diffs) // 2] < 0.01
    # Metered exactly once: 300 texts of the job plus 300 synchronous.
    _ledger_and_usage(api, auth, redis, expected=600)


def _ledger_and_usage(api, auth, redis, *, expected: int) -> None:
    from workers.jobs.usage import flush_usage

    flush_usage()
    usage = api.get("/v1/usage", headers=auth).get_json()
    assert usage["period"]["used"] == expected
    assert usage["daily"][-1]["by_source"] == {"api": expected}


def test_results_stream_as_jsonl(jobs_app, api, auth, redis) -> None:
    created = api.post("/v1/jobs", json={"texts": TEXTS * 3}, headers=auth).get_json()
    _work(redis)
    lines = api.get(f"/v1/jobs/{created['id']}/results?format=jsonl", headers=auth)
    assert lines.status_code == 200 and lines.mimetype == "application/x-ndjson"
    assert "attachment" in lines.headers["Content-Disposition"]
    streamed = [json.loads(x) for x in lines.get_data(as_text=True).splitlines()]
    assert streamed == _all_results(api, auth, created["id"], limit=5)
    assert len(streamed) == 18


def test_jsonl_and_csv_uploads_carry_ids(jobs_app, api, auth, redis) -> None:
    jsonl = "\n".join(
        json.dumps({"text": t, "id": f"row-{i}"}) for i, t in enumerate(TEXTS)
    )
    up = api.post(
        "/v1/jobs",
        data={"file": (io.BytesIO(jsonl.encode()), "tickets.jsonl")},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert up.status_code == 202, up.get_data(as_text=True)
    csv_body = 'ticket,body\nA-1,Thanks a lot!\nA-2,"Broken, again."\nA-3,\n'
    up_csv = api.post(
        "/v1/jobs",
        data={
            "file": (io.BytesIO(csv_body.encode()), "export.csv"),
            "text_column": "body",
            "id_column": "ticket",
        },
        headers=auth,
        content_type="multipart/form-data",
    )
    assert up_csv.status_code == 202, up_csv.get_data(as_text=True)
    # The empty third text fails alone and is not charged.
    assert up_csv.get_json()["units"]["reserved"] == 2
    assert up_csv.get_json()["progress"]["invalid"] == 1
    _work(redis)
    rows = _all_results(api, auth, up.get_json()["id"])
    assert [r["id"] for r in rows] == [f"row-{i}" for i in range(len(TEXTS))]
    assert rows[0]["label"] == "positive" and rows[1]["label"] == "negative"
    csv_rows = _all_results(api, auth, up_csv.get_json()["id"])
    assert [r["id"] for r in csv_rows] == ["A-1", "A-2", "A-3"]
    assert csv_rows[0]["label"] == "positive" and csv_rows[1]["label"] == "negative"
    assert csv_rows[2]["error"]["code"] == "text_empty"


@pytest.mark.parametrize(
    ("name", "body", "extra", "code"),
    [
        ("bad.jsonl", b'{"text": "ok"}\n{not json\n', {}, "invalid_file"),
        ("bad.jsonl", b'{"body": "no text field"}\n', {}, "invalid_file"),
        ("bad.jsonl", b"[1, 2]\n", {}, "invalid_file"),
        ("bad.jsonl", b"\xff\xfe\x00garbage", {}, "invalid_file"),
        ("empty.jsonl", b"\n\n", {}, "invalid_file"),
        ("data.csv", b"message\nhello\n", {}, "invalid_file"),
        ("data.txt", b"hello\n", {}, "invalid_file"),
        ("data.csv", b"text\nhello\n", {"format": "xml"}, "invalid_file"),
        ("data.csv", b"text\nhello\n", {"sentences": "maybe"}, "invalid_request"),
        ("data.csv", b"text\nhello\n", {"model": "nope-9"}, "unknown_model"),
    ],
)
def test_bad_uploads_are_refused_whole(jobs_app, api, auth, name, body, extra, code):
    response = api.post(
        "/v1/jobs",
        data={"file": (io.BytesIO(body), name), **extra},
        headers=auth,
        content_type="multipart/form-data",
    )
    _error(response, 400, code)
    assert api.get("/v1/jobs", headers=auth).get_json()["jobs"] == []
    assert response.headers["X-Quota-Used"] == "0"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"texts": []}, 400, "invalid_request"),
        ({"texts": "one string"}, 400, "invalid_request"),
        ({"texts": ["a", "b"], "ids": ["only one"]}, 400, "invalid_request"),
        ({"texts": ["a"], "ids": [{"x": 1}]}, 400, "invalid_request"),
        ({"texts": ["a"], "sentences": "yes"}, 400, "invalid_request"),
        ({"texts": ["ok"] * 100_001}, 400, "batch_too_large"),
        ([1, 2], 400, "invalid_request"),
    ],
)
def test_bad_json_jobs_are_refused(jobs_app, api, auth, body, status, code) -> None:
    _error(api.post("/v1/jobs", json=body, headers=auth), status, code)


def test_a_job_that_does_not_fit_the_quota_is_refused_whole(
    jobs_app, api, auth, redis
) -> None:
    ws = _ws(jobs_app, auth)
    add_ledger_usage(jobs_app, ws, 9_900)
    over = api.post("/v1/jobs", json={"texts": ["fine"] * 101}, headers=auth)
    error = _error(over, 429, "quota_exceeded")
    assert "10,000" in error["message"]
    assert api.get("/v1/jobs", headers=auth).get_json()["jobs"] == []
    fits = api.post("/v1/jobs", json={"texts": ["fine", ""] * 50}, headers=auth)
    assert fits.status_code == 202 and fits.headers["X-Quota-Remaining"] == "50"
    job = fits.get_json()
    # Cancelled before a worker took it: the 50 reserved units come back, once.
    cancelled = api.delete(f"/v1/jobs/{job['id']}", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["units"] == {"reserved": 50, "used": 0, "released": 50}
    assert cancelled.headers["X-Quota-Remaining"] == "100"
    _error(api.delete(f"/v1/jobs/{job['id']}", headers=auth), 409, "job_finished")
    assert api.get("/v1/usage", headers=auth).headers["X-Quota-Remaining"] == "100"
    _work(redis)  # the queued run finds the job cancelled and scores nothing
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()["status"] == (
        "cancelled"
    )
    left = _all_results(api, auth, job["id"])  # only the refused texts' entries
    assert [r["index"] for r in left] == list(range(1, 100, 2))
    assert {r["error"]["code"] for r in left} == {"text_empty"}


def test_jobs_are_per_workspace(jobs_app, api, auth, redis) -> None:
    from tests.conftest import ApiKeyActions

    job = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth).get_json()
    _, _, other = ApiKeyActions(jobs_app).issue("Other")
    theirs = {"Authorization": f"Bearer {other}"}
    for method, path in [
        ("get", f"/v1/jobs/{job['id']}"),
        ("get", f"/v1/jobs/{job['id']}/results"),
        ("delete", f"/v1/jobs/{job['id']}"),
    ]:
        _error(getattr(api, method)(path, headers=theirs), 404, "not_found")
    assert api.get("/v1/jobs", headers=theirs).get_json()["jobs"] == []
    assert [j["id"] for j in api.get("/v1/jobs", headers=auth).get_json()["jobs"]] == [
        job["id"]
    ]


def test_inputs_are_deleted_unless_the_workspace_keeps_them(
    jobs_app, api, auth, redis
) -> None:
    sessions = jobs_app.extensions["tonehub"].sessions
    first = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth).get_json()
    assert api.get("/v1/workspace", headers=auth).get_json() == {
        "keep_job_inputs": False
    }
    kept = api.patch("/v1/workspace", json={"keep_job_inputs": True}, headers=auth)
    assert kept.status_code == 200 and kept.get_json()["keep_job_inputs"] is True
    _error(
        api.patch("/v1/workspace", json={"keep_job_inputs": "yes"}, headers=auth),
        400,
        "invalid_request",
    )
    second = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth).get_json()
    _work(redis)

    def texts(job_id: str) -> list[str | None]:
        with sessions() as s:
            return list(
                s.scalars(
                    select(BatchJobItem.text)
                    .where(BatchJobItem.job_id == job_id)
                    .order_by(BatchJobItem.idx)
                )
            )

    assert texts(first["id"]) == [None] * len(TEXTS)
    assert texts(second["id"]) == TEXTS
    # Results are kept for the retention period, then deleted with the job.
    with sessions() as s:
        job = s.get(BatchJob, first["id"])
        expires = job.expires_at.replace(tzinfo=UTC)
        finished = job.finished_at.replace(tzinfo=UTC)
        assert expires - finished == timedelta(days=7)
        assert purge_expired(s, now=datetime.now(UTC)) == 0
        assert purge_expired(s, now=expires + timedelta(seconds=1)) == 2
    _error(api.get(f"/v1/jobs/{first['id']}", headers=auth), 404, "not_found")


def test_job_answers_match_the_spec(jobs_app, api, auth, redis) -> None:
    spec = api.get("/v1/openapi.json").get_json()
    created = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth)
    check_against_spec(spec, "/v1/jobs", "post", created)
    job_id = created.get_json()["id"]
    _work(redis)
    path = "/v1/jobs/{job_id}"
    check_against_spec(spec, path, "get", api.get(f"/v1/jobs/{job_id}", headers=auth))
    check_against_spec(
        spec,
        path + "/results",
        "get",
        api.get(f"/v1/jobs/{job_id}/results", headers=auth),
    )
    check_against_spec(spec, "/v1/jobs", "get", api.get("/v1/jobs", headers=auth))
    check_against_spec(
        spec, path, "delete", api.delete(f"/v1/jobs/{job_id}", headers=auth)
    )


# --- failure, crash and the webhook --------------------------------------------


class Broken:
    """A scoring service whose model fails (a run that raises)."""

    def __init__(self, real) -> None:
        self.registry = real.registry

    def score(self, texts, **kwargs):
        raise RuntimeError("model exploded")


def test_a_job_failing_every_run_fails_and_releases_its_units(
    jobs_app, api, auth, redis
) -> None:
    ext = jobs_app.extensions["tonehub"]
    job = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth).get_json()
    released = []
    for _ in range(runner.MAX_RUNS):
        with pytest.raises(RuntimeError):
            runner.run_job(
                ext.sessions,
                Broken(ext.scoring),
                job["id"],
                release=released.append,
                grace=timedelta(days=7),
            )
    status = api.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()
    assert status["status"] == "failed"
    assert "model exploded" in status["error"]
    assert status["units"] == {"reserved": 6, "used": 0, "released": 6}
    assert [j.id for j in released] == [job["id"]]
    with ext.sessions() as s:
        from core.persistence.models import OutboundEvent

        types = s.scalars(select(OutboundEvent.type)).all()
    assert types == ["job.failed"]


def _run_slowly(db_url: str, job_id: str) -> None:
    """A worker process: scores one chunk of 20 at a time, slowly."""
    real = runtime.get().scoring  # built before the fork, as the worker does

    class Slow:
        registry = real.registry

        def score(self, texts, **kwargs):
            time.sleep(0.3)
            return real.score(texts, **kwargs)

    sessions = make_session_factory(make_engine(db_url))
    runner.run_job(
        sessions, Slow(), job_id, release=lambda j: None, grace=timedelta(0), chunk=20
    )


def test_a_worker_killed_mid_job_loses_and_doubles_nothing(
    jobs_app, api, auth, redis
) -> None:
    ext = jobs_app.extensions["tonehub"]
    texts = [f"{t} [{i}]" for i in range(20) for t in TEXTS]  # 120
    job = api.post("/v1/jobs", json={"texts": texts}, headers=auth).get_json()
    db_url = jobs_app.config["DATABASE_URL"]
    child = multiprocessing.get_context("fork").Process(
        target=_run_slowly, args=(db_url, job["id"])
    )
    child.start()
    deadline = time.monotonic() + 60
    scored = 0
    while time.monotonic() < deadline and scored < 40:
        time.sleep(0.05)
        with ext.sessions() as s:
            scored = s.get(BatchJob, job["id"]).scored
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    with ext.sessions() as s:
        row = s.get(BatchJob, job["id"])
        assert row.status == "running" and 40 <= row.scored < 120
        lease = row.lease_until.replace(tzinfo=UTC)
    # The sweep sees the expired lease and runs the job again from its
    # checkpoint (in the test, with the clock moved past the lease).
    later = lease + timedelta(seconds=1)
    resume, failed = runner.fail_stalled(
        ext.sessions, release=lambda j: None, now=later
    )
    assert resume == [job["id"]] and failed == []
    report = runner.run_job(
        ext.sessions,
        ext.scoring,
        job["id"],
        release=lambda j: None,
        grace=timedelta(days=7),
        clock=lambda: later,
        chunk=20,
    )
    assert report.status == "succeeded" and report.scored < 120
    results = _all_results(api, auth, job["id"])
    assert [r["index"] for r in results] == list(range(120))
    assert all("label" in r for r in results)
    with ext.sessions() as s:
        ledger = s.scalar(
            select(func.sum(UsageDaily.count)).where(
                UsageDaily.workspace_id == _ws(jobs_app, auth)
            )
        )
        flushes = s.scalars(
            select(UsageFlush.batch_id).where(UsageFlush.batch_id.like(f"{job['id']}%"))
        ).all()
        assert s.get(BatchJob, job["id"]).scored == 120
    assert ledger == 120  # every text metered once, none twice
    assert sorted(flushes, key=lambda b: int(b.split(":")[1])) == [
        f"{job['id']}:{i}" for i in range(0, 120, 20)
    ]


def test_job_succeeded_reaches_a_receiver_that_verifies_it(
    jobs_app, api, auth, redis
) -> None:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        hook = api.post(
            "/v1/webhooks",
            json={"url": receiver.url + "/tonehub", "event_types": ["job.succeeded"]},
            headers=auth,
        )
        assert hook.status_code == 201, hook.get_data(as_text=True)
        receiver.secrets = [hook.get_json()["secret"]]
        job = api.post("/v1/jobs", json={"texts": TEXTS}, headers=auth).get_json()
        _work(redis)
        deadline = time.monotonic() + 10
        while not receiver.deliveries and time.monotonic() < deadline:
            _work(redis)
            time.sleep(0.1)
        assert len(receiver.deliveries) == 1
        got = receiver.deliveries[0]
        assert got.verified
        assert got.event["type"] == "job.succeeded"
        assert got.event["data"]["job_id"] == job["id"]
        assert got.event["data"]["scored"] == len(TEXTS)
        with jobs_app.extensions["tonehub"].sessions() as s:
            assert s.scalars(select(WebhookDelivery.status)).all() == ["succeeded"]
        log = api.get(
            f"/v1/webhooks/{hook.get_json()['id']}/attempts", headers=auth
        ).get_json()["attempts"]
        assert [a["status_code"] for a in log] == [200]
    finally:
        receiver.stop()


def test_retention_follows_the_setting(tmp_path, redis, redis_url, scorer) -> None:
    app = _make_app(tmp_path, redis_url, scorer, SECRET_KEY="k", JOB_RETENTION_DAYS="2")
    runtime.configure(Settings.from_mapping(app.config), scorer=scorer)
    try:
        from tests.conftest import ApiKeyActions

        _, _, secret = ApiKeyActions(app).issue()
        auth = {"Authorization": f"Bearer {secret}"}
        client = app.test_client()
        ran = client.post("/v1/jobs", json={"texts": TEXTS[:2]}, headers=auth)
        _work(redis)  # the worker's runtime reads the same setting
        cancelled = client.post("/v1/jobs", json={"texts": TEXTS[:2]}, headers=auth)
        assert (
            client.delete(f"/v1/jobs/{cancelled.json['id']}", headers=auth).json[
                "status"
            ]
            == "cancelled"
        )
        for job_id in (ran.json["id"], cancelled.json["id"]):
            body = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
            finished = datetime.fromisoformat(body["finished_at"])
            expires = datetime.fromisoformat(body["expires_at"])
            assert expires - finished == timedelta(days=2), body
    finally:
        _close_app(app)


def test_make_demo_jobs_passes() -> None:
    """The issue's bar: 10,000 texts over the API to gunicorn, worker and
    scheduler; progress while it runs; results equal synchronous scoring; the
    signed job.succeeded retried once and verified by a local receiver."""
    from tests.conftest import run_demo

    out = run_demo("demo_jobs.py", timeout=600)
    assert "sample of 300: 300 labels as synchronous scoring" in out
    assert "ok  progress visible while it ran" in out
