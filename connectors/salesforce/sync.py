"""One sync of a connected org: changed Cases in, sentiment fields out.

1. Query Cases with ``SystemModstamp >= watermark`` (to the second: SOQL
   datetime literals have no milliseconds) ordered by ``(SystemModstamp, Id)``,
   following ``nextRecordsUrl``; rows at or before the exact watermark
   ``(SystemModstamp, Id)`` are dropped here, so ties are neither missed nor
   repeated.
2. A Case whose text hash is unchanged is skipped: our own write-back bumps
   ``SystemModstamp`` but not the text, so it never causes a rescore.
3. A changed text is admitted (one unit, source ``salesforce``), scored,
   recorded in the ledger under a batch id made from the Case and its hash
   (a retried sync cannot meter it twice), and queued for write-back.
4. Write-back: ``composite/sobjects`` PATCH with ``allOrNone=false`` and at
   most 200 records per call; ``UNABLE_TO_LOCK_ROW`` is retried with backoff;
   other per-record failures are recorded and retried by later syncs.
5. The watermark moves past a Case only once it is written, skipped, or its
   failure recorded for a retry.

The sync stops early, with a status the dashboard shows, when the org's
daily API use passes the budget share (``paused_budget``), when the
workspace's quota is used up (``paused_quota``), when Salesforce refuses our
credentials (``auth_revoked``) or a configured field does not exist
(``error``: no retry loop until someone fixes it and asks for a sync).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
from redis import Redis
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.salesforce.client import (
    OrgClient,
    SalesforceAuthError,
    auth_revoked_event,
)
from connectors.salesforce.text import case_text
from core.billing.state import plan_in_force
from core.config import Settings
from core.metering import Meter, UsageKey
from core.metering.ledger import apply_batch, record_thresholds
from core.persistence.models import SalesforceCase, SalesforceConnection, Workspace
from core.scoring.service import ScoringService
from core.secrets import SecretBox
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

BATCH = 200
"""Records per ``composite/sobjects`` call (Salesforce's maximum)."""

LOCK_RETRIES = (0.5, 1.0, 2.0)
"""Backoff, in seconds, for records refused with ``UNABLE_TO_LOCK_ROW``."""

DEFAULT_FIELDS = {
    "label": "Sentiment__c",
    "score": "Sentiment_Score__c",
    "confidence": "Sentiment_Confidence__c",
    "scored_at": "Sentiment_Scored_At__c",
    "model": "Sentiment_Model__c",
}
"""Case fields written, per connection configurable (``settings.fields``)."""

MAX_WRITE_ATTEMPTS = 5
"""Syncs that try to write a Case's score before giving up on it (until its
text changes); the error stays on record."""

PERMANENT_WRITE_ERRORS = frozenset(
    {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "INVALID_ID_FIELD"}
)
"""Write errors no retry can fix: given up at once."""

DEFAULT_TEXT_FIELDS = ["Subject", "Description"]
DEFAULT_ALERT_CONFIDENCE = 0.9
"""A Case scored negative with at least this confidence raises a
``sentiment.alert`` webhook event (per connection: ``alert_confidence``,
``null`` turns it off)."""
INITIAL_DAYS = 30
"""A new connection starts with the Cases changed in the last 30 days."""


@dataclass
class SyncDeps:
    """What a sync needs, injected by the worker (or a test)."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis
    scoring: ScoringService
    box: SecretBox
    grace: timedelta
    sleep: Callable[[float], None] = time.sleep


@dataclass
class SyncReport:
    """What one sync did."""

    status: str = "connected"
    seen: int = 0
    scored: int = 0
    skipped: int = 0
    written: int = 0
    write_calls: int = 0
    failed: int = 0
    api_calls: int = 0
    error: str | None = None
    _order: list[tuple[str, str]] = field(default_factory=list, repr=False)


def _key(record: dict[str, Any]) -> tuple[str, str]:
    stamp = datetime.fromisoformat(
        str(record["SystemModstamp"]).replace("+0000", "+00:00").replace("Z", "+00:00")
    )
    return stamp.astimezone(UTC).isoformat(timespec="milliseconds"), str(record["Id"])


class OrgSync:
    """One run of the sync for one connection."""

    def __init__(
        self, deps: SyncDeps, connection_id: str, *, now: datetime | None = None
    ):
        self.deps = deps
        self.connection_id = connection_id
        self.now = now or datetime.now(UTC)
        self.report = SyncReport()
        self.client = OrgClient(
            deps.settings,
            sessions=deps.sessions,
            redis=deps.redis,
            box=deps.box,
            connection_id=connection_id,
        )
        with deps.sessions() as session:
            conn = session.get(SalesforceConnection, connection_id)
            assert conn is not None
            config = json.loads(conn.settings or "{}")
            self.workspace_id = conn.workspace_id
            self.watermark = (conn.watermark_ts, conn.watermark_id)
        self.fields = {**DEFAULT_FIELDS, **config.get("fields", {})}
        self.text_fields: list[str] = config.get("text_fields", DEFAULT_TEXT_FIELDS)
        alert = config.get("alert_confidence", DEFAULT_ALERT_CONFIDENCE)
        self.alert_confidence: float | None = None if alert is None else float(alert)
        self.pending: list[dict[str, Any]] = []
        self.handled: dict[tuple[str, str], bool] = {}
        self.meter = Meter(deps.redis, deps.sessions)

    # --- the run -------------------------------------------------------------------

    def run(self) -> SyncReport:
        """Sync once; the report's ``status`` is stored on the connection."""
        try:
            self._retry_failed_writes()
            self._pull()
            self._flush()
        except _Stop as stop:
            self._flush_quietly()
            self.report.status, self.report.error = stop.status, stop.reason
        except SalesforceAuthError as exc:
            self.report.status, self.report.error = "auth_revoked", exc.message
        except SalesforceError as exc:
            self.report.status, self.report.error = _classify(exc)
        except requests.RequestException as exc:
            self.report.status = "connected"  # transient: the next sync retries
            self.report.error = f"Salesforce could not be reached: {exc!s:.200}"
        except IntegrityError:
            logger.info(
                "Salesforce connection %s went away mid-sync", self.connection_id
            )
            return self.report
        self.report.api_calls = self.client.stats.calls
        self._save()
        return self.report

    def _pull(self) -> None:
        since = self._since()
        soql = format_soql(
            "SELECT {:literal} FROM Case WHERE SystemModstamp >= {} "
            "ORDER BY SystemModstamp, Id",
            ", ".join(["Id", *self.text_fields, "SystemModstamp"]),
            since,
        )
        page = self.client.call(lambda sf: sf.query(soql))
        while True:
            self._take_page(page.get("records", []))
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.client.call(partial(_more, url=next_url))

    def _since(self) -> datetime:
        if self.watermark[0]:
            return datetime.fromisoformat(self.watermark[0]).replace(microsecond=0)
        return (self.now - timedelta(days=INITIAL_DAYS)).replace(microsecond=0)

    def _take_page(self, records: list[dict[str, Any]]) -> None:
        """Skip what is known, then admit and score the page's changed Cases."""
        changed: list[tuple[tuple[str, str], str, str]] = []
        with self.deps.sessions() as session:
            for record in records:
                key = _key(record)
                if self.watermark[0] and key <= (
                    self.watermark[0],
                    self.watermark[1] or "",
                ):
                    continue  # at or before the watermark: an earlier sync's
                self.report.seen += 1
                self.report._order.append(key)
                text = case_text([record.get(f) for f in self.text_fields])
                digest = hashlib.sha256(text.encode()).hexdigest()
                row = session.get(SalesforceCase, (self.connection_id, key[1]))
                if row is not None and row.text_hash == digest:
                    self.report.skipped += 1
                    self.handled[key] = True
                elif not text:
                    self._remember(session, row, key[1], digest)
                    self.report.skipped += 1
                    self.handled[key] = True
                else:
                    changed.append((key, text, digest))
        self._check_budget()
        if changed:
            self._score_all(changed)

    def _score_all(self, changed: list[tuple[tuple[str, str], str, str]]) -> None:
        """One admission for the page (one rate-limit token, N units)."""
        with self.deps.sessions() as session:
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            plan = plan_in_force(workspace, now=self.now, grace=self.deps.grace)
        take, stop = changed, None
        for _attempt in range(5):
            admission = self.meter.admit(self.workspace_id, plan, len(take))
            if admission.reason == "rate":
                self.deps.sleep(admission.retry_after)
                continue
            if admission.reason == "quota":
                left = admission.quota_remaining or 0
                stop = _Stop(
                    "paused_quota", f"The {plan.title} plan's quota is used up."
                )
                take = take[:left]
                if not take:
                    raise stop
                continue
            break
        else:
            raise _Stop("connected", "Rate limited; the next sync continues.")
        try:
            results = self.deps.scoring.score([text for _k, text, _d in take])
        except Exception:
            self.meter.refund(self.workspace_id, admission.period, len(take))
            raise
        with self.deps.sessions() as session:
            for (key, _text, digest), result in zip(take, results, strict=True):
                # The Case's SystemModstamp is in the key: a retried sync of the
                # same edit is not metered twice, an edit back to an earlier
                # text is metered again.
                batch = (
                    "sf:"
                    + hashlib.sha1(
                        f"{self.connection_id}/{key[1]}/{key[0]}/{digest}".encode()
                    ).hexdigest()[:37]
                )
                usage = Counter(
                    {UsageKey(self.now.date(), "salesforce", "", result["label"]): 1}
                )
                if not apply_batch(session, self.workspace_id, batch, usage):
                    self.meter.refund(self.workspace_id, admission.period, 1)
                else:
                    self._alert(session, key[1], result)
                row = session.get(SalesforceCase, (self.connection_id, key[1]))
                self._remember(session, row, key[1], digest, result)
                self.pending.append({"key": key, "id": key[1], "result": result})
                self.report.scored += 1
            # The ledger was written directly (not by the flush): check the
            # 80% / 100% quota thresholds for this page (recorded once a period).
            record_thresholds(
                session, self.workspace_id, now=self.now, grace=self.deps.grace
            )
        while len(self.pending) >= BATCH:
            self._flush_some()
        if stop is not None:
            raise stop

    def _alert(self, session: Session, case_id: str, result: dict[str, Any]) -> None:
        """A ``sentiment.alert`` for a Case scored negative above the threshold."""
        confidence = float(result["confidence"]["negative"])
        if result["label"] != "negative" or self.alert_confidence is None:
            return
        if confidence < self.alert_confidence:
            return
        emit(
            session,
            self.workspace_id,
            "sentiment.alert",
            {
                "source": "salesforce",
                "connection_id": self.connection_id,
                "case_id": case_id,
                "label": "negative",
                "confidence": round(confidence, 4),
                "threshold": self.alert_confidence,
                "model": result.get("model"),
            },
            now=self.now,
        )

    def _remember(
        self,
        session: Session,
        row: SalesforceCase | None,
        case_id: str,
        digest: str,
        result: dict[str, Any] | None = None,
    ) -> SalesforceCase:
        if row is None:
            row = SalesforceCase(connection_id=self.connection_id, case_id=case_id)
            session.add(row)
        row.text_hash = digest
        if result is not None:
            row.label, row.score = result["label"], result["score"]
            row.confidence = max(result["confidence"].values())
            row.model, row.scored_at = result["model"], self.now
            row.written, row.write_error, row.write_attempts = False, None, 0
        session.commit()
        return row

    # --- write-back ---------------------------------------------------------------

    def _record(self, case_id: str, result: dict[str, Any]) -> dict[str, Any]:
        f = self.fields
        return {
            "attributes": {"type": "Case"},
            "id": case_id,
            f["label"]: str(result["label"]).capitalize(),
            f["score"]: round(float(result["score"]), 4),
            f["confidence"]: round(max(result["confidence"].values()), 4),
            f["scored_at"]: self.now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            f["model"]: result["model"],
        }

    def _flush(self) -> None:
        while self.pending:
            self._flush_some()

    def _flush_some(self) -> None:
        """Write one chunk of at most 200 records and record the outcomes."""
        chunk, self.pending = self.pending[:BATCH], self.pending[BATCH:]
        try:
            outcome = self._write(
                {c["id"]: self._record(c["id"], c["result"]) for c in chunk}
            )
        except (SalesforceError, requests.RequestException) as exc:
            # The whole call failed: every record is left for a later sync.
            self._mark(
                chunk, {c["id"]: f"write call failed: {exc!s:.200}" for c in chunk}
            )
            raise
        self._mark(chunk, outcome)
        fields_missing = [e for e in outcome.values() if e and "INVALID_FIELD" in e]
        if fields_missing and len(fields_missing) == len(chunk):
            raise _Stop(
                "error",
                f"{fields_missing[0].rstrip('.')}. Deploy connectors/salesforce/"
                "metadata to the org, or map the fields, then sync again.",
            )

    def _mark(
        self, chunk: list[dict[str, Any]], outcome: dict[str, str | None]
    ) -> None:
        with self.deps.sessions() as session:
            for item in chunk:
                error = outcome.get(item["id"])
                row = session.get(SalesforceCase, (self.connection_id, item["id"]))
                if row is None:
                    continue  # disconnected meanwhile
                row.written, row.write_error = error is None, error
                if error is None:
                    row.write_attempts = 0
                    self.report.written += 1
                else:
                    tries = (row.write_attempts or 0) + 1
                    if error.split(":")[0] in PERMANENT_WRITE_ERRORS:
                        tries = MAX_WRITE_ATTEMPTS  # no retry can fix it
                    row.write_attempts = tries
                    self.report.failed += 1
                self.handled[item["key"]] = True
            session.commit()

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except (_Stop, SalesforceError):
            pass

    def _write(self, records: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        """Write records; ``{case id: None (written) or an error}``."""
        outcome: dict[str, str | None] = {}
        todo = dict(records)
        for delay in (0.0, *LOCK_RETRIES):
            if not todo:
                break
            if delay:
                self.deps.sleep(delay)
            self._check_budget()
            records_now = list(todo.values())
            results = self.client.call(partial(_composite, records=records_now))
            self.report.write_calls += 1
            locked = {}
            for result in results:
                case_id = str(result.get("id"))
                if result.get("success"):
                    outcome[case_id] = None
                    continue
                errors = result.get("errors") or [{}]
                code = str(errors[0].get("statusCode", "UNKNOWN"))
                message = f"{code}: {errors[0].get('message', '')}"
                outcome[case_id] = message
                if code == "UNABLE_TO_LOCK_ROW" and case_id in todo:
                    locked[case_id] = todo[case_id]
            todo = locked
        return outcome

    def _retry_failed_writes(self) -> None:
        with self.deps.sessions() as session:
            rows = (
                session.query(SalesforceCase)
                .filter(
                    SalesforceCase.connection_id == self.connection_id,
                    SalesforceCase.written.is_(False),
                    SalesforceCase.label.is_not(None),
                    SalesforceCase.write_attempts < MAX_WRITE_ATTEMPTS,
                )
                .limit(BATCH * 5)
                .all()
            )
            retry = [
                {
                    "key": ("", r.case_id),
                    "id": r.case_id,
                    "result": {
                        "label": r.label,
                        "score": r.score,
                        "confidence": {"x": r.confidence or 0.0},
                        "model": r.model,
                    },
                }
                for r in rows
            ]
        self.pending.extend(retry)
        self._flush()

    # --- budget and status ------------------------------------------------------------

    def _check_budget(self) -> None:
        used, allowed = self.client.stats.used, self.client.stats.allowed
        share = self.deps.settings.salesforce_budget_share
        if used is not None and allowed and used >= share * allowed:
            raise _Stop(
                "paused_budget",
                f"The org used {used:,} of its {allowed:,} daily API calls "
                f"(the limit for Tonehub is {share:.0%}); syncing resumes when "
                "its usage drops.",
            )

    def _save(self) -> None:
        order = self.report._order
        last = None
        for key in order:  # the watermark: the longest handled prefix
            if not self.handled.get(key):
                break
            last = key
        with self.deps.sessions() as session:
            conn = session.get(SalesforceConnection, self.connection_id)
            if conn is None:
                return
            moved = (conn.watermark_ts, conn.watermark_id) != self.watermark
            if last is not None and not moved:  # a backfill meanwhile wins
                conn.watermark_ts, conn.watermark_id = last
            if self.report.status == "auth_revoked" and conn.status != "auth_revoked":
                auth_revoked_event(session, conn, self.report.error or "")
            if conn.status != "auth_revoked" or self.report.status == "auth_revoked":
                conn.status = self.report.status
            conn.last_error = self.report.error
            conn.last_sync_at = self.now
            conn.cases_scored += self.report.scored
            conn.api_calls_last_sync = self.report.api_calls
            conn.api_calls_total += self.report.api_calls
            stats = self.client.stats
            if stats.used is not None:
                conn.api_usage = f"{stats.used}/{stats.allowed}"
            session.commit()
        logger.info(
            "Salesforce sync %s: %s scored, %s skipped, %s written in %s calls, "
            "%s API calls, status %s",
            self.connection_id,
            self.report.scored,
            self.report.skipped,
            self.report.written,
            self.report.write_calls,
            self.report.api_calls,
            self.report.status,
        )


class _Stop(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _more(sf: Salesforce, *, url: str) -> dict[str, Any]:
    page: dict[str, Any] = sf.query_more(url, identifier_is_url=True)
    return page


def _composite(
    sf: Salesforce, *, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    result = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"allOrNone": False, "records": records},
    )
    return list(result or [])


def _classify(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    first: Any = content[0] if isinstance(content, list) and content else {}
    code = first.get("errorCode", "") if isinstance(first, dict) else ""
    message = f"{code}: {first.get('message', '')}" if code else str(exc)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return "paused_budget", message
    if (exc.status or 0) >= 500:
        return (
            "connected",
            f"Salesforce failed ({exc.status}): {message}; retried next sync",
        )
    if code in ("INVALID_FIELD", "MALFORMED_QUERY"):
        return (
            "error",
            message.rstrip(".")
            + ". Fix the connection's field settings, then sync again.",
        )
    return "error", message
