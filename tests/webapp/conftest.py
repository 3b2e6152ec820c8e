"""Fixtures and helpers for the web tests."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from core.config import Settings
from tests.conftest import _close_app, _make_app
from workers import runtime


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def check_against_spec(spec: dict, path: str, method: str, response) -> None:
    """Validate a real response against the spec's schema for its status."""
    documented = spec["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (path, method, response.status_code)
    schema = documented[str(response.status_code)]["content"]["application/json"][
        "schema"
    ]
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    errors = list(validator.iter_errors(response.get_json()))
    assert errors == [], (path, response.status_code, errors)


@pytest.fixture
def jobs_app(  # the real app with webhooks allowed to loopback receivers
    tmp_path, redis, redis_url, scorer
):
    application = _make_app(
        tmp_path,
        redis_url,
        scorer,
        SECRET_KEY="jobs-test-secret",
        WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    runtime.configure(Settings.from_mapping(application.config), scorer=scorer)
    yield application
    runtime.get().close()
    _close_app(application)
