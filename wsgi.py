"""WSGI entry point: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``."""

import os

from core.logs import configure_logging
from webapp import create_app

configure_logging(
    os.environ.get("TONEHUB_LOG_FORMAT", "json"),
    os.environ.get("TONEHUB_LOG_LEVEL", "INFO"),
)

app = create_app()
