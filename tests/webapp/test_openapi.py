"""The generated OpenAPI 3.1 document covers every route and matches the answers."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.webapp.conftest import check_against_spec

# HTML pages for browsers (Stripe returns buyers there) are not API routes.
UNDOCUMENTED = {
    "/v1/openapi.json",
    "/static/<path:filename>",
    "/billing/complete",
    "/billing/cancelled",
    # Slack's own protocol (signed by Slack; see connectors/slack/manifest.yml).
    "/slack/events",
    "/slack/install",
    "/slack/oauth_redirect",
    "/salesforce/oauth/callback",
    "/",
    # Prometheus text format for the operator's scraper, not the public API.
    "/metrics",
}


def test_document_is_valid_openapi_31(spec: dict) -> None:
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_every_route_is_documented(app, spec: dict) -> None:
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED or rule.endpoint.startswith("dashboard."):
            continue  # HTML pages for people, not the API
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (path, method)


def test_answers_match_the_document(client, auth, spec: dict) -> None:
    calls = [
        ("/v1/sentiment", "post", {"json": {"text": "Great support, thanks!"}}),
        ("/v1/sentiment", "post", {"json": {"text": "Meh. Bad.", "sentences": True}}),
        ("/v1/sentiment", "post", {"json": {"text": ""}}),
        ("/v1/sentiment", "post", {"data": b"{", "content_type": "application/json"}),
        ("/v1/sentiment", "post", {"data": "text=hi"}),
        ("/v1/sentiment/batch", "post", {"json": {"texts": ["good", "", 1]}}),
        ("/v1/sentiment/batch", "post", {"json": {"texts": ["a"] * 101}}),
        ("/v1/models", "get", {}),
        ("/healthz", "get", {}),
        ("/readyz", "get", {}),
    ]
    for path, method, kwargs in calls:
        response = getattr(client, method)(path, headers=auth, **kwargs)
        check_against_spec(spec, path, method, response)
    response = client.get("/v1/models")
    assert response.status_code == 401
    check_against_spec(spec, "/v1/models", "get", response)
