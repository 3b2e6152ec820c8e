"""``make demo-slack``: the Slack flow end to end on this machine.

Starts the fake Slack (tests/fakes/slack.py) and the service as ``make run``
starts it (embedded Redis, worker, scheduler, gunicorn) pointed at the fake,
installs the app through the OAuth flow as a browser would, then delivers one
signed message event twice (the second as Slack's retry). It passes when the
fake Slack received exactly one reaction for it and the workspace was metered
exactly once; otherwise it exits non-zero.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.slack import SIGNING_SECRET, FakeSlack, send_event  # noqa: E402


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise SystemExit("the service did not become ready")


def _install(base: str) -> None:
    opener = urllib.request.build_opener(_NoRedirect())

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
    work = Path(tempfile.mkdtemp(prefix="tonehub-demo-slack-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    fake = FakeSlack()
    fake.start()
    print(f"Fake Slack on {fake.url}; Tonehub on {base}; files in {work}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONEHUB_")} | {
        "TONEHUB_PORT": str(port),
        "TONEHUB_VAR_DIR": str(work / "var"),
        "TONEHUB_DATABASE_URL": f"sqlite:///{work / 'demo.db'}",
        "TONEHUB_PUBLIC_URL": base,
        "TONEHUB_SLACK_API_URL": fake.api_url,
        "TONEHUB_SLACK_CLIENT_ID": fake.client_id,
        "TONEHUB_SLACK_CLIENT_SECRET": fake.client_secret,
        "TONEHUB_SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    log = (work / "service.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_dev.py"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(base, proc)
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
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        fake.stop()
        print(json.dumps({"service_log": str(work / "service.log")}))


if __name__ == "__main__":
    raise SystemExit(main())
