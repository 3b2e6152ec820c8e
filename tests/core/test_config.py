"""Settings from the environment: values as written, converted per field."""

from __future__ import annotations

from core.config import Settings
from tests.conftest import _close_app, _make_app


def test_env_values_are_not_json_decoded() -> None:
    settings = Settings.from_env(
        {
            "TONEHUB_SLACK_CLIENT_ID": "1234567890123.1234567890123",
            "TONEHUB_SECRET_KEY": "1e999",
            "TONEHUB_STRIPE_PRICE_PLUS": "null",
            "TONEHUB_JOB_RETENTION_DAYS": "3",
            "TONEHUB_METERING": "false",
        }
    )
    assert settings.slack_client_id == "1234567890123.1234567890123"
    assert settings.secret_key == "1e999"
    assert settings.stripe_price_plus == "null"
    assert settings.job_retention_days == 3
    assert settings.metering is False


def test_the_app_reads_env_values_as_written(
    tmp_path, redis_url, scorer, monkeypatch
) -> None:
    monkeypatch.setenv("TONEHUB_SLACK_CLIENT_ID", "1234567890123.1234567890123")
    monkeypatch.setenv("TONEHUB_JOB_RETENTION_DAYS", "2")
    app = _make_app(tmp_path, redis_url, scorer)
    try:
        settings = app.extensions["tonehub"].settings
        assert settings.slack_client_id == "1234567890123.1234567890123"
        assert settings.job_retention_days == 2
    finally:
        _close_app(app)
