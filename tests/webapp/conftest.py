"""Fixtures and helpers for the web tests."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator


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
