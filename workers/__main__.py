"""Worker entry point: ``python -m workers``.

Loads the model once, then forks a work horse per job (RQ's default), so no job
pays for loading it. Never builds a Flask app.
"""

from __future__ import annotations

import os

from redis import Redis
from rq import Worker

from core.config import Settings
from core.logs import configure_logging
from workers import runtime
from workers.queues import QUEUES


def main() -> None:
    """Configure logging, preload the model and work the queues."""
    configure_logging(
        os.environ.get("TONEHUB_LOG_FORMAT", "json"),
        os.environ.get("TONEHUB_LOG_LEVEL", "INFO"),
    )
    settings = Settings.from_env()
    connection = Redis.from_url(settings.redis_url)
    runtime.configure(settings)
    # with_scheduler: RQ moves jobs due for a retry (Retry intervals) and
    # enqueue_in/at jobs back to their queue; without it they wait forever.
    Worker(list(QUEUES), connection=connection).work(with_scheduler=True)


if __name__ == "__main__":
    main()
