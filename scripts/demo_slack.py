"""``make demo-slack``: the Slack flow end to end on this machine.

Starts the fake Slack (tests/fakes/slack.py) and the service as ``make run``
starts it (embedded Redis, worker, scheduler, gunicorn) pointed at the fake,
installs the app through the OAuth flow as a browser would, then delivers one
signed message event twice (the second as Slack's retry). It passes when the
fake Slack received exactly one reaction for it and the workspace was metered
exactly once; otherwise it exits non-zero.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts._demo import NoRedirect, Service  # noqa: E402
from tests.fakes.slack import SIGNING_SECRET, FakeSlack, send_event  # noqa: E402


def _install(base: str) -> None:
    opener = urllib.request.build_opener(NoRedirect())

    def redirect(url: str) -> tuple[str, str]:
        try:
            opener.open(url)
        except urllib.error.HTTPError as exc:
            if exc.code in (302, 303):
                cookie = (exc.headers.get("Set-Cookie") or "").split(";")[0]
                return str(exc.headers["Location"]), cookie
            raise
        raise SystemExit(f"expected a redirect from {url}")

    # The state cookie is Secure (production is https); over this plain-http
    # demo it is sent by hand, as a browser would over https.
    authorize, cookie = redirect(f"{base}/slack/install")
    print(f"  install -> {authorize.split('?')[0]}")
    callback, _ = redirect(authorize)
    request = urllib.request.Request(callback, headers={"Cookie": cookie})
    with opener.open(request) as page:
        body = page.read().decode()
    if "installed" not in body:
        raise SystemExit("the OAuth callback did not report an installation")
    print("  installed: the OAuth callback stored the installation")


def main() -> int:
    fake = FakeSlack()
    fake.start()
    service = Service.start(
        "slack",
        {
            "TONEHUB_SLACK_API_URL": fake.api_url,
            "TONEHUB_SLACK_CLIENT_ID": fake.client_id,
            "TONEHUB_SLACK_CLIENT_SECRET": fake.client_secret,
            "TONEHUB_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        },
    )
    base, work = service.base, service.work
    print(f"Fake Slack on {fake.url}; Tonehub on {base}; files in {work}")
    try:
        service.wait_ready()
        _install(base)
        event = {
            "token": "legacy",
            "team_id": "T0001",
            "api_app_id": "A0TONEHUB",
            "type": "event_callback",
            "event_id": "Ev0DEMO0001",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": "C0SUPPORT",
                "channel_type": "channel",
                "user": "U0ALICE",
                "ts": "1764700000.000100",
                "team": "T0001",
                "text": "Third outage this week, still no answer. Unacceptable.",
            },
        }
        for retry in (None, 1):
            status, _ = send_event(f"{base}/slack/events", event, retry_num=retry)
            print(
                f"  event delivered{' again (retry 1)' if retry else ''}: HTTP {status}"
            )
        deadline = time.monotonic() + 30
        while not fake.calls_to("reactions.add") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # room for a second reaction, were there one
        reactions = fake.calls_to("reactions.add")
        with sqlite3.connect(work / "demo.db") as db:
            metered = db.execute(
                "SELECT COALESCE(SUM(count), 0) FROM usage_daily WHERE source='slack'"
            ).fetchone()[0]
        names = [r["params"]["name"] for r in reactions]
        print(f"  reactions in the fake's log: {names}; texts metered: {metered}")
        print(f"  the fake's log: {fake.url}/_fake/requests")
        ok = len(reactions) == 1 and names == ["red_circle"] and metered == 1
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        service.stop()
        fake.stop()


if __name__ == "__main__":
    raise SystemExit(main())
