"""End to end in a real browser: Playwright driving Debian's chromium.

Sign up -> create a key -> call the API with it -> the call shows on the
overview; upgrade through the fake Stripe -> the plan shows plus; revoke the
key -> the API refuses it. Screenshots of each page go to test-artifacts/.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import _close_app, _make_app, stripe_settings
from tests.fakes.stripe import FakeStripe

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium); "
    ".ci/run installs it, so CI always runs these",
)


@pytest.fixture
def live(tmp_path, redis, redis_url, scorer):
    """The app on a real HTTP server, with a fake Stripe that delivers webhooks."""
    server_box: dict = {}
    fake = FakeStripe()
    fake.start()
    app = _make_app(
        tmp_path, redis_url, scorer, SECRET_KEY="e2e-secret", **stripe_settings(fake)
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["tonehub"].settings = app.extensions["tonehub"].settings.__class__(
        **{**app.extensions["tonehub"].settings.__dict__, "public_url": base}
    )
    app.extensions["tonehub"].billing.config = app.extensions[
        "tonehub"
    ].billing.config.__class__(
        prices=app.extensions["tonehub"].billing.config.prices,
        public_url=base,
        grace=app.extensions["tonehub"].billing.config.grace,
    )
    fake.webhook_url = f"{base}/webhooks/stripe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server_box.update(base=base, fake=fake)
    yield server_box
    server.shutdown()
    fake.stop()
    _close_app(app)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        yield context.new_page()
        browser.close()


def _api(base: str, secret: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/sentiment",
        data=json.dumps({"text": "Lovely support!"}).encode(),
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_up_key_usage_upgrade_revoke(live, page) -> None:
    base, fake = live["base"], live["fake"]
    page.goto(f"{base}/dashboard/signup")
    shot(page, "01-signup")
    page.get_by_label("Email").fill("e2e@example.com")
    page.get_by_label("Password (at least 10 characters)").fill("correct horse battery")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base}/dashboard/")
    shot(page, "02-overview-empty")

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name of the new key").fill("production")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("th_live_")
    shot(page, "03-key-created")
    assert _api(base, secret) == 200

    page.get_by_role("link", name="Overview").click()
    assert page.locator("#used").inner_text() == "1"
    shot(page, "04-overview-used")

    page.get_by_role("link", name="Billing").click()
    shot(page, "05-billing-basic")
    page.get_by_role(
        "button", name="Upgrade to Plus ($49/month, 100,000 texts)"
    ).click()
    page.wait_for_url(f"{fake.url}/c/pay/*")
    shot(page, "06-fake-stripe-checkout")
    page.get_by_role("button", name="Pay (test mode)").click()
    page.wait_for_url(f"{base}/billing/complete")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the fake delivers the webhooks
        page.goto(f"{base}/dashboard/billing")
        if page.locator("#plan").inner_text() == "plus":
            break
        time.sleep(0.3)
    assert page.locator("#plan").inner_text() == "plus"
    shot(page, "07-billing-plus")

    page.get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="Revoke").click()
    shot(page, "08-revoke-confirm")
    page.get_by_role("button", name="Revoke the key").click()
    page.wait_for_url(f"{base}/dashboard/keys")
    assert _api(base, secret) == 401
    shot(page, "09-key-revoked")

    # Every other page renders at phone width, with a heading, and is captured.
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Text").fill("I love the product. The invoice was wrong.")
    page.get_by_role("button", name="Score").click()
    assert page.locator(".sentence.positive").count() >= 1
    shot(page, "10-playground")
    for name, heading in (
        ("Connectors", "Connectors"),
        ("Members", "Members"),
        ("Webhooks", "Webhooks"),
        ("Settings", "Settings"),
        ("Password", "Change your password"),
    ):
        page.get_by_role("link", name=name, exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == heading
        shot(page, f"11-{name.lower()}")
