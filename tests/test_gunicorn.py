"""gunicorn with deploy/gunicorn.conf.py, --preload off and on: 2 workers
serve concurrent scoring without a hang, /metrics sums both workers, and
stderr holds one JSON line per request with no text and no key in it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
PLANTED = "Quokka-lantern-5521 hated every minute"
REQUESTS = 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, redis_url: str, port: int, preload: bool) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TONEHUB_")} | {
        "TONEHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
        "TONEHUB_REDIS_URL": redis_url,
        "TONEHUB_SECRET_KEY": "gunicorn-test",
        "TONEHUB_BIND": f"127.0.0.1:{port}",
        "TONEHUB_WEB_WORKERS": "2",
        "TONEHUB_WEB_THREADS": "2",
        "TONEHUB_PRELOAD": "true" if preload else "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "PYTHONUNBUFFERED": "1",
    }


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _call(url: str, key: str, text: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.status, r.headers["X-Request-Id"]


def _wait_ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("gunicorn exited:\n" + log.read_text())
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    pytest.fail("gunicorn did not become ready:\n" + log.read_text())


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload"])
def test_gunicorn_config_serves_concurrently(
    tmp_path: Path, redis, redis_url: str, preload: bool
) -> None:
    port = _free_port()
    env = _env(tmp_path, redis_url, port, preload)
    _flask(env, "init-db")
    workspace = _flask(env, "create-workspace", "Load").split()[-1]
    _flask(env, "set-plan", workspace, "pro")  # 200 requests/s: no 429 here
    key = next(
        w for w in _flask(env, "create-key", workspace).split() if w.startswith("th_")
    )
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "wsgi:app",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log)
        texts = [f"{PLANTED} #{i}" for i in range(REQUESTS)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda t: _call(base + "/v1/sentiment", key, t), texts)
            )
        assert [status for status, _ in answers] == [200] * REQUESTS
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            body = r.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    labels = (("method", "POST"), ("route", "/v1/sentiment"), ("status", "200"))
    assert samples[("tonehub_http_requests_total", labels)] == REQUESTS
    inference = sum(
        v
        for (name, _), v in samples.items()
        if name == "tonehub_model_inference_seconds_count"
    )
    assert inference >= REQUESTS  # one model call per distinct text, at least
    output = log.read_text()
    # Both workers served (multiprocess metrics summed over two pids).
    pids = {
        line.split("pid: ")[1].split(")")[0]
        for line in output.splitlines()
        if "Booting worker with pid" in line
    }
    assert len(pids) == 2, output
    # Workers leave cleanly at SIGTERM: no onnxruntime abort after a preload.
    assert "SIGABRT" not in output and "terminate called" not in output, output
    # Each worker loads its own model: after the fork, or again after it
    # when the master preloaded one (post_fork -> Tonehub.after_fork).
    loads = output.count('"message": "Loading model ')
    assert loads == (3 if preload else 2), output
    request_lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"tonehub.request"' in line
    ]
    ids = {rid for _, rid in answers}
    logged = {x["request_id"] for x in request_lines if x["route"] == "/v1/sentiment"}
    assert logged == ids
    assert (
        PLANTED.split()[0] not in output and key not in output and key[8:] not in output
    )
