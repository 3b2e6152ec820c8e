"""``make demo-salesforce``: the Salesforce flow end to end on this machine.

Starts the fake org (tests/fakes/salesforce.py, TLS, 300 Cases) and the service
as ``make run`` starts it, pointed at the fake; connects the org through the
OAuth pages as an admin would, then asks for syncs and checks the outcome:
every Case scored once in ceil(300/200) = 2 write calls, a second sync writes
nothing, an edited Case is rescored once. Exits non-zero when any check fails.
"""

from __future__ import annotations

import json
import math
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts._demo import NoRedirect, Service, report  # noqa: E402
from tests.fakes.salesforce import FakeSalesforce  # noqa: E402

CASES = 300
WRITE_PATH = "/services/data/v59.0/composite/sobjects"


def _api(base: str, key: str, method: str, path: str) -> Any:
    request = urllib.request.Request(
        base + path, method=method, headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _wait(predicate: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def _sync(base: str, key: str, after: str | None) -> dict[str, Any]:
    _api(base, key, "POST", "/v1/connectors/salesforce/sync")

    def done() -> dict[str, Any] | None:
        status = _api(base, key, "GET", "/v1/connectors/salesforce")
        return status if status["last_sync_at"] != after else None

    return dict(_wait(done, "a sync"))


def main() -> int:
    fake = FakeSalesforce(page_size=100)
    fake.seed(CASES)
    fake.start()
    service = Service.start(
        "salesforce",
        {
            "TONEHUB_SALESFORCE_LOGIN_URL": fake.url,
            "TONEHUB_SALESFORCE_CLIENT_ID": fake.client_id,
            "TONEHUB_SALESFORCE_CLIENT_SECRET": fake.client_secret,
            "TONEHUB_SALESFORCE_CA_BUNDLE": fake.ca_path,
        },
    )
    base = service.base
    print(f"Fake Salesforce on {fake.url} ({CASES} Cases); Tonehub on {base}")
    try:
        key = service.dev_key()["key"]
        service.wait_ready()
        start = _api(base, key, "POST", "/v1/connectors/salesforce/connect")
        tls = ssl.create_default_context(cafile=fake.ca_path)
        opener = urllib.request.build_opener(
            NoRedirect(), urllib.request.HTTPSHandler(context=tls)
        )
        try:
            opener.open(start["url"])
            raise SystemExit("the fake did not redirect back")
        except urllib.error.HTTPError as exc:
            callback = str(exc.headers["Location"])
        with urllib.request.urlopen(callback, timeout=30) as page:
            print(f"  connect: HTTP {page.status}, {page.read().decode()[-90:]!r}")
        first = _sync(base, key, None)
        writes1 = len(fake.calls_to("PATCH", WRITE_PATH))
        print(
            f"  sync 1: {first['cases_scored']} scored, {writes1} write calls, "
            f"{first['api_calls_last_sync']} API calls, status {first['status']}"
        )
        second = _sync(base, key, first["last_sync_at"])
        writes2 = len(fake.calls_to("PATCH", WRITE_PATH)) - writes1
        print(
            f"  sync 2: {second['cases_scored'] - first['cases_scored']} scored, "
            f"{writes2} write calls"
        )
        case_id = next(iter(fake.cases))
        fake.edit(case_id, Description="Third outage this week. I am furious.")
        third = _sync(base, key, second["last_sync_at"])
        writes3 = len(fake.calls_to("PATCH", WRITE_PATH)) - writes1 - writes2
        rescored = third["cases_scored"] - second["cases_scored"]
        print(
            f"  sync 3 after one edit: {rescored} "
            f"scored, {writes3} write calls; the Case now says "
            f"{fake.cases[case_id].get('Sentiment__c')}"
        )
        labelled = sum(1 for c in fake.cases.values() if c.get("Sentiment__c"))
        checks = {
            "every Case scored once": first["cases_scored"] == CASES == labelled,
            f"<= {math.ceil(CASES / 200)} write calls": writes1
            <= math.ceil(CASES / 200),
            "second sync writes nothing": writes2 == 0
            and second["cases_scored"] == CASES,
            "edited Case rescored once": third["cases_scored"] == CASES + 1
            and writes3 == 1,
        }
        return report(checks)
    finally:
        service.stop()
        fake.stop()


if __name__ == "__main__":
    raise SystemExit(main())
