"""The Tonehub web application: public API, health checks, CLI."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from flask_wtf.csrf import CSRFProtect

from core.config import REPO_ROOT, Settings, dev_redis_url
from webapp.schemas import ErrorOut

API_TITLE = "Tonehub Sentiment API"
API_VERSION = "1.0.0"


def create_app(config: Mapping[str, Any] | None = None) -> APIFlask:
    """Build the Flask application.

    Configuration layers, last wins: the defaults below, ``TONEHUB_*``
    environment variables, then ``config`` (tests pass theirs here).

    Args:
        config: Extra configuration; ``SCORER`` may hold a loaded ``Scorer``.

    Returns:
        The application.
    """
    app = APIFlask(
        __name__,
        title=API_TITLE,
        version=API_VERSION,
        spec_path="/v1/openapi.json",
        docs_path=None,  # the bundled docs UI loads from a CDN; the spec is enough
        json_errors=False,  # webapp.errors renders every error itself
    )
    app.config.from_mapping(
        OPENAPI_VERSION="3.1.0",
        SYNC_LOCAL_SPEC=False,
        HTTP_ERROR_SCHEMA=ErrorOut,
        VALIDATION_ERROR_SCHEMA=ErrorOut,
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Invalid request (code invalid_request)",
        JSON_SORT_KEYS=False,
        INFO={
            "description": "Sentiment analysis for support and community teams. "
            "Authenticate with 'Authorization: Bearer <key>' or 'X-API-Key'. "
            'Errors are JSON {"error": {"code", "message"}} with stable codes.'
        },
        SECURITY_SCHEMES={
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    )
    # Values as written (not JSON-decoded): Settings converts each to its
    # field's type, and a secret that looks like a number stays intact.
    app.config.from_prefixed_env("TONEHUB", loads=str)
    if config:
        app.config.from_mapping(config)
    if not app.config.get("REDIS_URL"):
        var_dir = Path(app.config.get("VAR_DIR") or REPO_ROOT / "var")
        app.config["REDIS_URL"] = dev_redis_url(var_dir)
    settings = Settings.from_mapping(app.config)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Dashboard sessions: signed with the secret key; the cookie is HttpOnly,
    # SameSite=Lax, and Secure whenever the deployment is served over https.
    if not app.config.get("SECRET_KEY"):
        # Without TONEHUB_SECRET_KEY each process signs its own sessions: fine
        # for one process, not for several (make run and deployments set one).
        app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(days=7),
        WTF_CSRF_TIME_LIMIT=None,
    )

    from webapp import cli, errors, extensions, observability
    from webapp.api import bp as api_bp
    from webapp.body import refuse_control_characters_in_path
    from webapp.dashboard import bp as dashboard_bp
    from webapp.health import bp as health_bp
    from webapp.pages import bp as pages_bp
    from webapp.webhooks import bp as webhooks_bp
    from webapp.webhooks.slack import bp as slack_bp

    observability.init_app(app, settings)  # first: its hooks wrap every other one
    app.before_request(refuse_control_characters_in_path)
    extensions.init_app(app, settings)
    errors.init_app(app)
    cli.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(slack_bp)
    app.register_blueprint(dashboard_bp)
    # Every dashboard form carries a CSRF token; the API (keys), webhooks
    # (signatures) and Slack (signatures) authenticate otherwise.
    csrf = CSRFProtect(app)
    for blueprint in (api_bp, webhooks_bp, slack_bp, pages_bp):
        csrf.exempt(blueprint)
    return app
