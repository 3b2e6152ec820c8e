"""`make run`'s script end to end: embedded Redis, worker, gunicorn, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq import Queue

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONEHUB_")} | {
        "TONEHUB_PORT": str(port),
        "TONEHUB_VAR_DIR": str(tmp_path / "var"),
        "TONEHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "TONEHUB_WEB_WORKERS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / f"run-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        # A file, not a pipe: nobody has to drain the access log.
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, like a shell job
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        lines = log.read_text().splitlines()
        if any(line.startswith("Tonehub is starting") for line in lines):
            return proc, lines
        time.sleep(0.3)
    proc.kill()
    proc.wait()
    pytest.fail("run_dev did not start:\n" + log.read_text())


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/readyz", timeout=2
            ) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail("service never became ready")


def _score(port: int, key: str, text: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/sentiment",
        data=json.dumps({"text": text}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def _raw_post(port: int, path: str, chunked_body: bytes) -> tuple[int, bytes]:
    """POST a hand-made chunked body; returns status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Stripe-Signature: t=1,v1=00\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n".encode()
            + chunked_body
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _stop(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """Ctrl-C as a terminal sends it: SIGINT to the whole foreground group.

    Returns:
        Every process the script had started, to check that all are gone.
    """
    started = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    return started


def test_make_run_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc, lines = _start(tmp_path, port)
    try:
        output = "\n".join(lines)
        key = re.search(r"^Development API key: (th_live_\S+)$", output, re.M).group(1)
        assert f"curl -s http://127.0.0.1:{port}/v1/sentiment" in output
        socket_file = re.search(r"Embedded Redis at unix://(\S+)", output).group(1)
        url_file = tmp_path / "var" / "redis.url"
        assert url_file.read_text() == f"unix://{socket_file}?db=0"
        _wait_ready(port)
        assert (
            _score(port, key, "The support team fixed my issue in minutes, thank you!")[
                "label"
            ]
            == "positive"
        )
        assert (
            _score(
                port,
                key,
                "I have been waiting three weeks and nobody answers my emails",
            )["label"]
            == "negative"
        )
        assert (
            _score(port, key, "The meeting moved to 3pm in room 4")["label"]
            == "neutral"
        )

        # The RQ worker it started picks up jobs.
        redis = Redis(unix_socket_path=socket_file)
        job = Queue("default", connection=redis).enqueue(
            "workers.jobs.scoring.score_texts", ["What a great release!"]
        )
        deadline = time.monotonic() + 60
        while (
            job.get_status(refresh=True) != "finished" and time.monotonic() < deadline
        ):
            time.sleep(0.3)
        assert job.return_value()[0]["label"] == "positive"
        redis.close()

        # The scheduler it started flushes the three scored texts to the ledger.
        db = sqlite3.connect(tmp_path / "dev.db")
        deadline = time.monotonic() + 60
        total = 0
        while total < 3 and time.monotonic() < deadline:
            time.sleep(1)
            total = db.execute(
                "SELECT COALESCE(SUM(count), 0) FROM usage_daily"
            ).fetchone()[0]
        db.close()
        assert total == 3

        # Chunked bodies through gunicorn: malformed, and over the size limit.
        status, body = _raw_post(port, "/webhooks/stripe", b"zz\r\nabc\r\n0\r\n\r\n")
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_request"
        big = b"".join(b"%x\r\n%s\r\n" % (65536, b"a" * 65536) for _ in range(40))
        status, body = _raw_post(port, "/webhooks/stripe", big + b"0\r\n\r\n")
        assert (
            status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
        )
    finally:
        _stop(proc)
    # Every process is gone: the port is free and the embedded Redis is down.
    assert not url_file.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert (
        not Path(socket_file).exists()
        or Redis(unix_socket_path=socket_file).ping() is False
    )

    # A second start reuses the database and the key.
    proc, lines = _start(tmp_path, port)
    try:
        assert f"Development API key: {key}" in lines
    finally:
        _stop(proc)
