"""Salesforce through the real simple-salesforce against the fake org (TLS)."""

from __future__ import annotations

import math

from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from core.persistence.models import SalesforceCase, SalesforceConnection, UsageDaily
from tests.conftest import add_ledger_usage
from workers.queues import DEFAULT_QUEUE


def _metered(sf) -> int:
    with sf.app.extensions["tonehub"].sessions() as s:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(UsageDaily.count), 0)).where(
                    UsageDaily.workspace_id == sf.workspace_id,
                    UsageDaily.source == "salesforce",
                )
            )
        )


def test_connect_stores_tokens_encrypted(sf) -> None:
    status = sf.connect()
    assert status["status"] == "connected" and status["auth"] == "oauth"
    assert status["org_id"] == "00D000000000FAKE"
    with sf.app.extensions["tonehub"].sessions() as s:
        conn = s.scalars(select(SalesforceConnection)).one()
        assert conn.access_token not in sf.fake.tokens  # not in clear
        assert "00D!" not in conn.access_token and conn.refresh_token


def test_a_sync_scores_each_case_once_and_writes_in_few_calls(sf) -> None:
    n = 340
    sf.fake.seed(n)
    sf.connect()
    report = sf.sync()
    assert (report.scored, report.written, report.failed) == (n, n, 0)
    assert report.write_calls == math.ceil(n / 200)
    assert (
        len(sf.fake.calls_to("PATCH", "/services/data/v59.0/composite/sobjects")) == 2
    )
    labels = {c["Sentiment__c"] for c in sf.fake.cases.values()}
    assert labels == {"Negative", "Positive", "Neutral"}
    assert _metered(sf) == n
    # Our write-back bumped every SystemModstamp: the next sync sees them all
    # again, recognises the text, and neither scores nor writes.
    again = sf.sync()
    assert (again.seen, again.scored, again.write_calls) == (n, 0, 0)
    assert _metered(sf) == n
    third = sf.sync()
    assert (third.seen, third.scored) == (0, 0)
    status = sf.status()
    assert status["cases_scored"] == n and status["api_calls_last_sync"] >= 1


def test_an_edited_case_is_rescored_once(sf) -> None:
    [a, b] = sf.fake.seed(2)
    sf.connect()
    sf.sync()
    sf.fake.edit(
        b, Description="Actually this is the worst support ever, I am furious."
    )
    before = sf.fake.cases[b]["Sentiment__c"]
    report = sf.sync()
    assert (report.scored, report.written) == (1, 1)
    after = sf.fake.cases[b]["Sentiment__c"]
    assert after in ("Negative", "Mixed") and after != before
    assert sf.sync().scored == 0 and _metered(sf) == 3


def test_ties_on_system_modstamp_across_pages(sf) -> None:
    ids = sf.fake.seed(120, same_stamp=True)  # one timestamp, three pages of 50
    sf.connect()
    report = sf.sync()
    assert report.scored == 120
    with sf.app.extensions["tonehub"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(SalesforceCase)) == 120
        conn = s.scalars(select(SalesforceConnection)).one()
        assert conn.watermark_id == max(
            c["Id"]
            for c in sf.fake.cases.values()
            if c["SystemModstamp"]
            == max(x["SystemModstamp"] for x in sf.fake.cases.values())
        )
    assert len(sf.fake.calls_to("GET", "/services/data/v59.0/query/")) >= 2
    assert ids[0] in sf.fake.cases


def test_session_expiry_mid_sync_refreshes_once(sf) -> None:
    sf.fake.seed(120)
    sf.connect()
    original = sf.deps
    expired = {"done": False}

    def expire_after_first_page(*args, **kwargs):  # the session times out mid-sync
        if not expired["done"] and len(sf.fake.calls_to("GET", "/services/data")) >= 1:
            sf.fake.expire_tokens()
            expired["done"] = True

    sf.fake.calls_hook = expire_after_first_page
    from connectors.salesforce.sync import OrgSync

    sync = OrgSync(original(), sf.status()["id"])
    sync.client.http.hooks["response"].append(expire_after_first_page)
    report = sync.run()
    assert report.status == "connected" and report.scored == 120
    grants = [c for c in sf.fake.calls if c["path"] == "/services/oauth2/token"]
    assert len(grants) == 2  # the authorization code, then exactly one refresh


def test_refresh_refused_marks_auth_revoked(sf) -> None:
    sf.fake.seed(3)
    sf.connect()
    sf.fake.expire_tokens()
    sf.fake.refresh_tokens.clear()  # the admin revoked the app
    report = sf.sync()
    assert report.status == "auth_revoked"
    status = sf.status()
    assert status["status"] == "auth_revoked" and "refused" in status["last_error"]


def test_partial_write_failures_are_retried_later_and_do_not_block(sf) -> None:
    ids = sf.fake.seed(10)
    sf.connect()
    sf.fake.locked[ids[3]] = 2  # locked twice: the backoff retries get it through
    sf.fake.locked[ids[5]] = 99  # locked for good in this sync
    report = sf.sync()
    assert report.written == 9 and report.failed == 1
    assert "Sentiment__c" in sf.fake.cases[ids[3]]
    assert "Sentiment__c" not in sf.fake.cases[ids[5]]
    with sf.app.extensions["tonehub"].sessions() as s:
        row = s.get(SalesforceCase, (sf.status()["id"], ids[5]))
        assert "UNABLE_TO_LOCK_ROW" in row.write_error
    sf.fake.locked[ids[5]] = 0
    later = sf.sync()
    assert later.scored == 0 and sf.fake.cases[ids[5]]["Sentiment__c"]
    assert _metered(sf) == 10


def test_budget_stop(sf) -> None:
    sf.fake.seed(100)
    sf.connect()
    sf.fake.api_used = 7_499  # of 15,000: the first query reaches 50%
    report = sf.sync()
    assert report.status == "paused_budget"
    status = sf.status()
    assert (
        status["status"] == "paused_budget"
        and "daily API calls" in status["last_error"]
    )
    assert status["org_api_usage"].endswith("/15000")
    scored = report.scored
    assert scored < 100
    sf.fake.api_used = 0  # a new day
    rest = sf.sync()
    assert rest.status == "connected" and scored + rest.scored == 100


def test_request_limit_exceeded_backs_off(sf) -> None:
    sf.fake.seed(5)
    sf.connect()
    sf.fake.api_used = sf.fake.api_max
    report = sf.sync()
    assert report.status == "paused_budget" and "REQUEST_LIMIT_EXCEEDED" in report.error


def test_quota_exhaustion_pauses_the_sync(sf) -> None:
    sf.fake.seed(5)
    add_ledger_usage(sf.app, sf.workspace_id, 9_998)  # earlier this month
    sf.connect()
    report = sf.sync()
    assert report.scored == 2 and report.status == "paused_quota"
    assert sf.status()["status"] == "paused_quota"
    assert all("Sentiment__c" in sf.fake.cases[c] for c in list(sf.fake.cases)[:2])


def test_soql_injection_shaped_text_is_just_text(sf) -> None:
    [case] = sf.fake.seed(1)
    sf.fake.edit(case, Subject="x' OR Id != '' --", Description="\\'; DELETE FROM Case")
    sf.connect()
    assert sf.sync().scored == 1
    queries = [
        c["query"]["q"] for c in sf.fake.calls_to("GET", "/services/data/v59.0/query")
    ]
    assert all("DELETE" not in q for q in queries)


def test_a_missing_custom_field_is_a_clear_status_not_a_loop(sf) -> None:
    sf.fake.seed(4)
    sf.fake.fields.discard("Sentiment__c")
    sf.connect()
    report = sf.sync()
    assert report.status == "error" and "Sentiment__c" in report.error
    status = sf.status()
    assert status["status"] == "error" and "metadata" in status["last_error"]
    # The scheduler leaves an org in error alone until someone asks again.
    from workers.jobs.salesforce import schedule_salesforce_syncs

    assert schedule_salesforce_syncs() == []
    sf.fake.fields.add("Sentiment__c")
    queued = sf.client.post("/v1/connectors/salesforce/sync", headers=sf.auth)
    assert queued.status_code == 202 and queued.get_json()["queued"] is True


def test_scheduled_sync_runs_on_the_worker(sf, redis) -> None:
    sf.fake.seed(30)
    sf.connect()
    from workers.jobs.salesforce import schedule_salesforce_syncs

    assert len(schedule_salesforce_syncs()) == 1
    assert schedule_salesforce_syncs() == []  # already waiting
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    [job] = queue.jobs
    SimpleWorker([queue], connection=redis).work(burst=True)
    job.refresh()
    assert job.return_value()["scored"] == 30
    assert len(schedule_salesforce_syncs()) == 0  # synced just now: not due


def test_an_edit_back_to_an_earlier_text_is_metered_again(sf) -> None:
    [case] = sf.fake.seed(1)
    sf.connect()
    sf.sync()
    original = sf.fake.cases[case]["Description"]
    sf.fake.edit(case, Description="Totally different text, and I am very angry.")
    sf.sync()
    sf.fake.edit(case, Description=original)
    assert sf.sync().scored == 1
    assert _metered(sf) == 3 == sf.status()["cases_scored"]


def test_a_failed_write_call_is_retried_by_the_next_sync(sf) -> None:
    sf.fake.seed(3)
    sf.connect()
    real = sf.fake._composite
    sf.fake._composite = lambda body: __import__(
        "tests.fakes.salesforce", fromlist=["x"]
    )._errors(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred")
    report = sf.sync()
    assert report.status == "connected" and "retried next sync" in report.error
    assert not any("Sentiment__c" in c for c in sf.fake.cases.values())
    sf.fake._composite = real
    again = sf.sync()
    assert again.scored == 0 and again.written == 3
    assert all("Sentiment__c" in c for c in sf.fake.cases.values())
    assert _metered(sf) == 3


def test_a_backfill_during_a_sync_is_not_overwritten(sf) -> None:
    from datetime import UTC, datetime

    from connectors.salesforce.sync import OrgSync

    sf.fake.seed(3)
    sf.connect()
    sync = OrgSync(sf.deps(), sf.status()["id"])  # starts from the old watermark
    back = sf.client.post(
        "/v1/connectors/salesforce/backfill", json={"days": 20}, headers=sf.auth
    )
    assert back.status_code == 202
    stamp = sf.status()["watermark"]
    sync.run()
    assert sf.status()["watermark"] == stamp
    assert stamp < datetime.now(UTC).isoformat()


def test_callback_pages_for_denied_and_unreachable(sf, sf_app) -> None:
    denied = sf.client.get("/salesforce/oauth/callback?error=access_denied&state=x")
    assert denied.status_code == 400 and b"not allowed" in denied.data
    ext = sf_app.extensions["tonehub"]
    ext.redis.set("th:sf:state:s1", sf.workspace_id)
    ext.settings = ext.settings.__class__(
        **{**ext.settings.__dict__, "salesforce_login_url": "https://127.0.0.1:1"}
    )
    down = sf.client.get("/salesforce/oauth/callback?state=s1&code=abc")
    assert down.status_code == 400 and b"could not be reached" in down.data


def test_backfill_and_disconnect(sf) -> None:
    sf.fake.seed(3)
    sf.connect()
    sf.sync()
    back = sf.client.post(
        "/v1/connectors/salesforce/backfill", json={"days": 60}, headers=sf.auth
    )
    assert back.status_code == 202
    again = sf.sync()
    assert again.seen >= 3 and again.scored == 0  # nothing rescored
    bad = sf.client.post(
        "/v1/connectors/salesforce/backfill", json={"days": 0}, headers=sf.auth
    )
    assert bad.status_code == 400
    gone = sf.client.delete("/v1/connectors/salesforce", headers=sf.auth)
    assert gone.status_code == 204
    assert (
        sf.client.get("/v1/connectors/salesforce", headers=sf.auth).status_code == 404
    )


def test_jwt_bearer_flow(sf_app, fake_sf, keys) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fake_sf.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sf_app.extensions["tonehub"].settings = sf_app.extensions[
        "tonehub"
    ].settings.__class__(
        **{**sf_app.extensions["tonehub"].settings.__dict__, "salesforce_jwt_key": pem}
    )
    _, _, secret = keys.issue("JWT Org")
    auth = {"Authorization": f"Bearer {secret}"}
    client = sf_app.test_client()
    done = client.post(
        "/v1/connectors/salesforce/connect-jwt",
        json={"username": "integration@acme.example"},
        headers=auth,
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["auth"] == "jwt"
    fake_sf.jwt_public_key = None  # the certificate was rotated: refused
    again = client.post(
        "/v1/connectors/salesforce/connect-jwt",
        json={"username": "integration@acme.example"},
        headers=auth,
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "salesforce_auth_revoked"


def test_make_demo_salesforce_passes() -> None:
    """The demo: real gunicorn, worker and scheduler against the fake org."""
    from tests.conftest import run_demo

    out = run_demo("demo_salesforce.py")
    assert "sync 1: 300 scored, 2 write calls" in out


def test_field_names_and_text_fields_are_configurable(sf) -> None:
    [case] = sf.fake.seed(1)
    sf.fake.fields |= {"Mood__c"}
    sf.connect()
    bad = sf.client.patch(
        "/v1/connectors/salesforce",
        headers=sf.auth,
        json={"fields": {"label": "x'; DROP"}},
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "fields"
    bad = sf.client.patch(
        "/v1/connectors/salesforce",
        headers=sf.auth,
        json={"fields": {"colour": "Mood__c"}},
    )
    assert bad.status_code == 400
    ok = sf.client.patch(
        "/v1/connectors/salesforce",
        headers=sf.auth,
        json={
            "fields": {"label": "Mood__c"},
            "text_fields": ["Subject"],
            "sync_minutes": 15,
        },
    )
    assert ok.status_code == 200, ok.get_data(as_text=True)
    body = ok.get_json()
    assert body["fields"] == {"label": "Mood__c"} and body["sync_minutes"] == 15
    sf.sync()
    assert sf.fake.cases[case]["Mood__c"] in (
        "Negative",
        "Neutral",
        "Positive",
        "Mixed",
    )
    assert "Sentiment__c" not in sf.fake.cases[case]
    query = sf.fake.calls_to("GET", "/services/data/v59.0/query")[0]["query"]["q"]
    assert query.startswith("SELECT Id, Subject, SystemModstamp FROM Case")


def test_salesforce_usage_alone_records_the_quota_thresholds(sf) -> None:
    """Sync usage goes to the ledger directly; crossing 80% and 100% of the
    quota is recorded once each, with its webhook event."""
    from core.persistence.models import OutboundEvent, UsageEvent

    add_ledger_usage(sf.app, sf.workspace_id, 7_995, source="salesforce")
    sf.fake.seed(10)
    sf.connect()
    assert sf.sync().scored == 10
    with sf.app.extensions["tonehub"].sessions() as s:
        events = s.scalars(
            select(UsageEvent.threshold).where(
                UsageEvent.workspace_id == sf.workspace_id
            )
        ).all()
        types = s.scalars(
            select(OutboundEvent.type).where(
                OutboundEvent.workspace_id == sf.workspace_id,
                OutboundEvent.type == "usage.threshold_reached",
            )
        ).all()
    assert events == [80] and len(types) == 1


def test_an_org_out_of_api_calls_is_synced_ever_less_often(sf, redis) -> None:
    """REQUEST_LIMIT_EXCEEDED: the wait doubles with each paused sync (5, 10,
    20 ... minutes, at most a day) and resets after a sync that got through."""
    from datetime import UTC, datetime, timedelta

    from core.persistence.models import SalesforceConnection
    from workers.jobs.salesforce import (
        backoff_interval,
        schedule_salesforce_syncs,
    )

    assert [backoff_interval(5, n).total_seconds() / 60 for n in range(4)] == [
        5,
        10,
        20,
        40,
    ]
    assert backoff_interval(5, 50) == timedelta(hours=24)
    sf.fake.seed(3)
    sf.connect()
    sf.fake.api_used = sf.fake.api_max
    queue = Queue(DEFAULT_QUEUE, connection=redis)

    def run_scheduled(minutes_ago: float) -> bool:
        """Pretend the last sync ended ``minutes_ago``; sync if it is due."""
        with sf.app.extensions["tonehub"].sessions() as s:
            conn = s.get(SalesforceConnection, sf.status()["id"])
            conn.last_sync_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
            s.commit()
        if not schedule_salesforce_syncs():
            return False
        SimpleWorker([queue], connection=redis).work(burst=True)
        return True

    assert run_scheduled(6)  # first sync: paused (1 in a row)
    assert sf.status()["status"] == "paused_budget"
    assert not run_scheduled(6)  # now waits 10 minutes
    assert run_scheduled(11)  # paused again: 2 in a row
    assert not run_scheduled(19)  # waits 20
    assert run_scheduled(21)
    sf.fake.api_used = 0  # the allowance came back
    assert not run_scheduled(39)  # 40 minutes after 3 pauses in a row
    assert run_scheduled(41)
    assert sf.status()["status"] == "connected"
    assert run_scheduled(6)  # back to the normal interval


def test_a_case_that_cannot_be_written_is_given_up_on(sf) -> None:
    """A validation rule that always refuses: 5 syncs try, then no more write
    calls for it; a deleted Case is given up at once; an edit starts over."""
    import json

    from core.persistence.models import SalesforceCase
    from tests.fakes.salesforce import Response

    blocked, deleted, fine = sf.fake.seed(3)
    sf.connect()
    real = sf.fake._composite
    tried: list[str] = []
    refusals = {
        blocked: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Closed Cases may not change"),
        deleted: ("ENTITY_IS_DELETED", "entity is deleted"),
    }

    def refusing(body):
        records = body["records"]
        tried.extend(r["id"] for r in records)
        passed = [r for r in records if r["id"] not in refusals]
        results = json.loads(real({"records": passed}).body) if passed else []
        for r in records:
            if r["id"] in refusals:
                code, message = refusals[r["id"]]
                results.append(
                    {
                        "id": r["id"],
                        "success": False,
                        "errors": [
                            {"statusCode": code, "message": message, "fields": []}
                        ],
                    }
                )
        return Response.json(200, results)

    sf.fake._composite = refusing
    report = sf.sync()
    assert (report.written, report.failed) == (1, 2)
    for _ in range(8):
        sf.sync()
    assert (tried.count(blocked), tried.count(deleted), tried.count(fine)) == (5, 1, 1)
    with sf.app.extensions["tonehub"].sessions() as s:
        row = s.get(SalesforceCase, (sf.status()["id"], blocked))
        assert row.write_attempts == 5 and "VALIDATION" in row.write_error
    # An edit gives the Case a new score and new tries.
    sf.fake.edit(blocked, Description="Now it is completely broken, I am furious.")
    sf.fake._composite = real
    assert sf.sync().written == 1
    assert sf.fake.cases[blocked]["Sentiment__c"] == "Negative"
