"""The app with Salesforce configured against the fake org (TLS, trustme CA)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis import Redis

from connectors.salesforce.sync import OrgSync, SyncDeps, SyncReport
from core.config import Settings
from core.secrets import SecretBox
from tests.conftest import _close_app, _make_app
from tests.fakes.salesforce import FakeSalesforce
from workers import runtime


@pytest.fixture
def fake_sf():
    fake = FakeSalesforce(page_size=50)
    fake.start()
    yield fake
    fake.stop()


def sf_settings(fake: FakeSalesforce) -> dict[str, Any]:
    return {
        "SECRET_KEY": "test-secret-key",
        "SALESFORCE_CLIENT_ID": fake.client_id,
        "SALESFORCE_CLIENT_SECRET": fake.client_secret,
        "SALESFORCE_LOGIN_URL": fake.url,
        "SALESFORCE_CA_BUNDLE": fake.ca_path,
        "PUBLIC_URL": "http://localhost",
    }


@pytest.fixture
def sf_app(tmp_path: Path, redis: Redis, redis_url: str, scorer, fake_sf):
    application = _make_app(tmp_path, redis_url, scorer, **sf_settings(fake_sf))
    runtime.configure(Settings.from_mapping(application.config), scorer=scorer)
    yield application
    _close_app(application)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class SfActions:
    app: Any
    fake: FakeSalesforce
    client: Any
    auth: dict[str, str]
    workspace_id: str

    def connect(self) -> dict:
        """The OAuth web-server flow as an admin's browser runs it."""
        start = self.client.post("/v1/connectors/salesforce/connect", headers=self.auth)
        assert start.status_code == 200, start.get_data(as_text=True)
        ctx = __import__("ssl").create_default_context(cafile=self.fake.ca_path)
        opener = urllib.request.build_opener(
            _NoRedirect(), urllib.request.HTTPSHandler(context=ctx)
        )
        try:
            opener.open(start.get_json()["url"])
            raise AssertionError("no redirect")
        except urllib.error.HTTPError as exc:
            back = urlsplit(exc.headers["Location"])
        page = self.client.get(f"{back.path}?{back.query}")
        assert page.status_code == 200, page.get_data(as_text=True)
        return self.status()

    def status(self) -> dict:
        return self.client.get(
            "/v1/connectors/salesforce", headers=self.auth
        ).get_json()

    def deps(self, **extra: Any) -> SyncDeps:
        ext = self.app.extensions["tonehub"]
        return SyncDeps(
            settings=ext.settings,
            sessions=ext.sessions,
            redis=ext.redis,
            scoring=ext.scoring,
            box=SecretBox(ext.settings.secret_key),
            grace=timedelta(days=7),
            sleep=lambda _s: None,
            **extra,
        )

    def sync(self) -> SyncReport:
        return OrgSync(self.deps(), self.status()["id"]).run()


@pytest.fixture
def sf(sf_app, fake_sf) -> SfActions:
    from tests.conftest import ApiKeyActions

    ws, _, secret = ApiKeyActions(sf_app).issue("Acme Service")
    return SfActions(
        sf_app, fake_sf, sf_app.test_client(), {"Authorization": f"Bearer {secret}"}, ws
    )
