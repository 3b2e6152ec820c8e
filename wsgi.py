"""WSGI entry point: ``gunicorn wsgi:app``."""

import logging

from webapp import create_app

logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise

app = create_app()
