"""Settings: one frozen dataclass built by the composition roots.

Only ``webapp.create_app``, ``workers.__main__`` and the CLI read the
environment (``TONEHUB_*`` variables); everything else receives ``Settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout; default paths hang off it."""

DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'tonehub.db'}"
"""SQLite file under ``var/`` unless ``TONEHUB_DATABASE_URL`` is set."""

DEFAULT_MODELS_DIR = REPO_ROOT / "models"
"""Every sub-directory with a ``model.json`` is a servable model version."""

DEFAULT_MODEL = "tonehub-sentiment-1.3.0"
"""The model that scores requests which name none."""

DEFAULT_MODEL_DIR = DEFAULT_MODELS_DIR / DEFAULT_MODEL
"""Directory of the default model."""

DEFAULT_ORT_THREADS = 1
"""onnxruntime intra-op threads per process; processes x threads ~ cores."""

DEFAULT_MAX_BATCH = 100
"""Texts per ``/v1/sentiment/batch`` request."""

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body; a 100,000-character text fits even when escaped."""

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
"""Where people reach this deployment (Checkout and Portal return here)."""

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
"""Stripe's API; tests and demos point it at ``tests/fakes/stripe.py``."""

DEFAULT_PAYMENT_GRACE_DAYS = 7
"""Days a failed payment keeps the paid plan before basic applies."""

DEFAULT_USAGE_FLUSH_SECONDS = 10
"""How often the scheduler flushes usage from Redis to the database."""

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
"""The Slack Web API; tests and demos point it at ``tests/fakes/slack.py``."""

DEFAULT_SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
"""Where Salesforce's OAuth lives; the fake's URL in tests and demos."""

ENV_PREFIX = "TONEHUB_"


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration.

    Attributes:
        database_url: SQLAlchemy URL (SQLite or PostgreSQL).
        redis_url: Redis URL (``redis://`` or ``unix://``).
        models_dir: Directory of the model versions.
        default_model: Id of the model used when a request names none.
        ort_threads: onnxruntime intra-op threads.
        max_batch: Most texts in one batch request.
        max_body_bytes: Largest accepted request body.
        metering: Admission and usage metering on ``/v1`` (off only for
            benchmarks that measure its overhead).
        public_url: Base URL people reach this deployment at.
        stripe_secret_key: ``sk_...``; empty: billing not configured.
        stripe_webhook_secret: ``whsec_...`` of the Stripe webhook endpoint.
        stripe_price_plus: Stripe price id of the Plus plan.
        stripe_price_pro: Stripe price id of the Pro plan.
        stripe_api_base: Stripe API address.
        payment_grace_days: Days a failed payment keeps the paid plan.
        usage_flush_seconds: Interval of the usage flush job.
        slack_signing_secret: Verifies requests from Slack.
        slack_client_id: The Slack app's OAuth client id.
        slack_client_secret: The Slack app's OAuth client secret.
        slack_api_url: Base URL of the Slack Web API.
        slack_user_salt: Salt of the hashed Slack user ids (defaults to one
            derived from the signing secret).
        secret_key: Encrypts connector tokens at rest (Fernet, derived).
        salesforce_client_id: The connected app's consumer key.
        salesforce_client_secret: The connected app's consumer secret.
        salesforce_login_url: Salesforce's login host for OAuth.
        salesforce_jwt_key: PEM private key (or a path to one) for the JWT
            bearer flow.
        salesforce_ca_bundle: CA file to trust for Salesforce (tests, demos).
        salesforce_api_version: REST API version.
        salesforce_sync_minutes: Default minutes between syncs of an org.
        salesforce_budget_share: Share of the org's daily API allocation a
            sync may bring it to before pausing.
        webhook_allow_hosts: Comma-separated hosts outbound webhooks may
            reach although they are not public (tests, local demos).
        job_retention_days: Days a finished batch job's results are kept.
        metrics_allow: Comma-separated networks (CIDR) besides loopback that
            may read ``/metrics`` (e.g. the cluster's pod network).
        metrics_token: A bearer token that opens ``/metrics`` from anywhere;
            empty: none.
        smtp_url: ``smtp://user:password@host:587`` (or ``smtps://``) for
            invite emails; empty: the dashboard shows the link instead.
        mail_from: The sender of those emails.
    """

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = "redis://127.0.0.1:6379/0"
    models_dir: Path = DEFAULT_MODELS_DIR
    default_model: str = DEFAULT_MODEL
    ort_threads: int = DEFAULT_ORT_THREADS
    max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    metering: bool = True
    public_url: str = DEFAULT_PUBLIC_URL
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_price_plus: str = ""
    stripe_price_pro: str = ""
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    payment_grace_days: int = DEFAULT_PAYMENT_GRACE_DAYS
    usage_flush_seconds: int = DEFAULT_USAGE_FLUSH_SECONDS
    slack_signing_secret: str = ""
    slack_client_id: str = ""
    slack_client_secret: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_user_salt: str = ""
    secret_key: str = ""
    salesforce_client_id: str = ""
    salesforce_client_secret: str = ""
    salesforce_login_url: str = DEFAULT_SALESFORCE_LOGIN_URL
    salesforce_jwt_key: str = ""
    salesforce_ca_bundle: str = ""
    salesforce_api_version: str = "59.0"
    salesforce_sync_minutes: int = 5
    salesforce_budget_share: float = 0.5
    webhook_allow_hosts: str = ""
    job_retention_days: int = 7
    metrics_allow: str = ""
    metrics_token: str = ""
    smtp_url: str = ""
    mail_from: str = "Tonehub <no-reply@tonehub.invalid>"

    @property
    def webhook_allow_list(self) -> tuple[str, ...]:
        """``webhook_allow_hosts`` split into host names."""
        return tuple(
            h.strip() for h in self.webhook_allow_hosts.split(",") if h.strip()
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from upper-case keys (``DATABASE_URL``, ...).

        Args:
            values: A mapping such as a Flask config; unknown keys are ignored.

        Returns:
            Settings with defaults for missing keys.
        """
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name.upper()
            if key in values and values[key] is not None:
                default = getattr(cls, f.name)
                kwargs[f.name] = _coerce(type(default), values[key])
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TONEHUB_*`` variables.

        Values are taken as written and converted to each field's type: a
        Slack client id such as ``1234567890123.1234567890123`` stays a
        string (JSON decoding would round it as a number).
        """
        environ = os.environ if environ is None else environ
        values = {
            key[len(ENV_PREFIX) :]: raw
            for key, raw in environ.items()
            if key.startswith(ENV_PREFIX)
        }
        return cls.from_mapping(values)


DEV_REDIS_URL_FILE = "redis.url"
"""Under the var directory: the embedded Redis of a running ``make run``."""


def dev_redis_url(var_dir: Path) -> str | None:
    """The URL of a running ``make run``'s embedded Redis, if there is one.

    Lets a CLI command in another terminal reach the same Redis as the
    service (cache invalidation, flushes) without exporting anything.
    """
    try:
        url = (var_dir / DEV_REDIS_URL_FILE).read_text().strip()
    except OSError:
        return None
    socket = url.removeprefix("unix://").split("?")[0]
    return url if url.startswith("unix://") and Path(socket).exists() else None


def _coerce(kind: type, value: Any) -> Any:
    """Convert a config value to a field's type; ``"false"``/``"0"`` are false."""
    if kind is bool and isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return kind(value)
