"""gunicorn configuration: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Used by the container image and by ``make run``. Sizing:

- ``workers``: one per CPU the process may use (the cgroup's CPU quota in a
  container, else the CPUs it may run on), or ``TONEHUB_WEB_WORKERS``.
- ``threads``: ``TONEHUB_WEB_THREADS`` (2): a thread waits on Redis or the
  database while the other scores.
- onnxruntime intra-op threads per process: ``cores // workers`` (at least
  1), unless ``TONEHUB_ORT_THREADS`` is set, so workers x model threads never
  exceed the cores.

Fork safety: without ``--preload`` (the default) each worker builds the app,
and so loads the model, after the fork. With ``TONEHUB_PRELOAD=true`` the
master builds it once and ``post_fork`` gives each worker fresh database
connections and its own model session.

Metrics: prometheus-client's multiprocess mode, in ``PROMETHEUS_MULTIPROC_DIR``
(a fresh temporary directory unless set), emptied when the server starts;
a dead worker's live gauges are dropped by ``child_exit``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def available_cores() -> int:
    """CPUs this process may use: the cgroup v2 quota if any, else affinity."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            return max(1, int(int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


CORES = available_cores()

workers = int(os.environ.get("TONEHUB_WEB_WORKERS") or CORES)
threads = int(os.environ.get("TONEHUB_WEB_THREADS") or 2)
worker_class = "gthread"
os.environ.setdefault("TONEHUB_ORT_THREADS", str(max(1, CORES // workers)))
# tokenizers' own thread pool would be disabled (with a warning) after a fork.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

bind = os.environ.get("TONEHUB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
preload_app = os.environ.get("TONEHUB_PRELOAD", "false").lower() == "true"
timeout = 60
graceful_timeout = 30
keepalive = 5
# The app logs one JSON line per request (webapp.observability) without the
# query string; gunicorn's access log would print raw paths (OAuth codes).
accesslog = None
errorlog = "-"
control_socket_disable = True

# A reload (SIGHUP) reads this file again with the variable already set: the
# marker remembers that the directory is this server's to remove.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tonehub-prom-")
    os.environ["TONEHUB_OWN_METRICS_DIR"] = "1"


def on_starting(server: Any) -> None:
    """Start every server with empty metric files."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    server.log.info(
        "Tonehub: %d workers x %d threads, %s onnxruntime threads each, preload %s",
        workers,
        threads,
        os.environ["TONEHUB_ORT_THREADS"],
        preload_app,
    )


def post_fork(server: Any, worker: Any) -> None:
    """With ``--preload``, give the worker its own connections and model."""
    if server.cfg.preload_app:
        app = worker.app.wsgi()
        app.extensions["tonehub"].after_fork()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the dead worker's live gauges from the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this config made for itself."""
    if os.environ.get("TONEHUB_OWN_METRICS_DIR") == "1":
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_exit(server: Any, worker: Any) -> None:
    """With ``--preload``, leave without interpreter teardown.

    onnxruntime was imported by the master before the fork; its C++ exit
    handlers then abort (SIGABRT) or hang in the child. The worker has
    finished its requests by now; nothing is lost by skipping teardown.
    """
    if not server.cfg.preload_app or os.getpid() != worker.pid:
        return  # (the master calls this too, for a worker that vanished)
    pending = sys.exc_info()[1]  # the SystemExit under way carries the code
    code = pending.code if isinstance(pending, SystemExit) else 0
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)
