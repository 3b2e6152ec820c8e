"""Log output for the entry points: one JSON object per line.

Only entry points (``wsgi.py``, ``workers/__main__.py``, the scheduler) call
``configure_logging``; modules just log. A record's structured fields travel
in ``extra={"fields": {...}}``; nothing else of a record is copied, so a stray
attribute can never carry a text or a secret into the output.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

QUIET_LIBRARIES = (
    "slack_sdk",
    "slack_bolt",
    "urllib3",
    "requests",
    "stripe",
    "simple_salesforce",
)
"""Client libraries whose DEBUG output carries secrets and texts."""

LOG_FORMATS = ("json", "text")
"""``TONEHUB_LOG_FORMAT``: json (default) or text for a terminal."""


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...fields, "exc_info"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    """Send every logger's records to stderr in ``fmt``, from ``level`` up.

    Args:
        fmt: ``json`` or ``text``.
        level: A logging level name.

    Raises:
        ValueError: An unknown format (a typo should stop the process, not
            silently change what the log collector receives).
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"TONEHUB_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    if fmt == "text":
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per plugin at INFO otherwise.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # At DEBUG these log request bodies and answers: OAuth codes, client
    # secrets, tokens, message texts. Never below INFO, whatever the level.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
