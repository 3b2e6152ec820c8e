"""What the demos share: the service as ``make run`` starts it, in a temp dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller (to read Location and cookies)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """``scripts/run_dev.py`` running on a free port with its own var/ and db."""

    work: Path
    base: str
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, env: dict[str, str]) -> Service:
        work = Path(tempfile.mkdtemp(prefix=f"tonehub-demo-{name}-"))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("TONEHUB_")} | {
            "TONEHUB_PORT": str(port),
            "TONEHUB_VAR_DIR": str(work / "var"),
            "TONEHUB_DATABASE_URL": f"sqlite:///{work / 'demo.db'}",
            "TONEHUB_PUBLIC_URL": base,
            **env,
        }
        log = (work / "service.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py"],
            cwd=REPO,
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(work, base, proc)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise SystemExit(f"the service did not become ready; see {self.log}")

    @property
    def log(self) -> Path:
        return self.work / "service.log"

    def stop(self) -> None:
        """Ctrl-C, as a terminal sends it, to the whole group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)
        print(f"service log: {self.log}")

    def dev_key(self, timeout: float = 180) -> dict[str, str]:
        """The development key file ``make run`` writes: key and workspace id."""
        key_file = self.work / "var" / "dev_api_key.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:  # absent, or caught half-written: look again
                data: dict[str, str] = json.loads(key_file.read_text())
                return data
            except (OSError, ValueError):
                time.sleep(0.5)
        raise SystemExit(f"no development key; see {self.log}")

    def issue_keys(self, count: int, plan: str) -> list[str]:
        """``count`` new workspaces on ``plan``, a key each (load tests)."""
        code = (
            "import sys\n"
            "from core import accounts\n"
            "from core.persistence.db import make_engine, make_session_factory\n"
            "sessions = make_session_factory(make_engine(sys.argv[1]))\n"
            "with sessions() as s:\n"
            "    for i in range(int(sys.argv[2])):\n"
            "        ws = accounts.create_workspace(s, f'load {i}')\n"
            "        accounts.set_plan(s, ws.id, sys.argv[3])\n"
            "        print(accounts.create_api_key(s, ws.id, name='load').secret)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, f"sqlite:///{self.work / 'demo.db'}"]
            + [str(count), plan],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.split()


def report(checks: dict[str, bool]) -> int:
    """Print each check and PASS or FAIL; the exit status."""
    for name, ok in checks.items():
        print(f"  {'ok ' if ok else 'BAD'} {name}")
    passed = all(checks.values())
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1
