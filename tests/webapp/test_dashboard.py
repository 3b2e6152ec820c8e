"""The dashboard through the real app: sign-up, keys, billing, members,
settings, playground, and tenant isolation. CSRF is on, as in production."""

from __future__ import annotations

import re

import pytest

from tests.conftest import _close_app, _make_app

PASSWORD = "correct horse battery"


@pytest.fixture
def dash_app(tmp_path, redis, redis_url, scorer, fake_stripe):
    from tests.conftest import stripe_settings

    app = _make_app(
        tmp_path,
        redis_url,
        scorer,
        SECRET_KEY="test-secret",
        **stripe_settings(fake_stripe),
    )
    yield app
    _close_app(app)


class Browser:
    def __init__(self, app):
        self.client = app.test_client()

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        match = re.search(
            r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)
        )
        assert match, (path, page.status_code)
        return match.group(1)

    def post(
        self, path: str, data: dict | None = None, *, form_from: str | None = None, **kw
    ):
        token = self.csrf(form_from or path)
        return self.client.post(path, data={"csrf_token": token, **(data or {})}, **kw)

    def signup(self, email: str) -> None:
        r = self.post("/dashboard/signup", {"email": email, "password": PASSWORD})
        assert r.status_code == 302, r.get_data(as_text=True)

    def new_key(self) -> str:
        created = self.post("/dashboard/keys", {"name": "prod"})
        assert created.status_code == 303  # post, redirect, get: no resubmission
        page = self.client.get("/dashboard/keys").get_data(as_text=True)
        return re.search(r'id="new-key">(th_live_[^<]+)<', page).group(1)


def test_signup_key_api_call_shows_on_overview(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("ana@example.com")
    secret = b.new_key()
    assert "shown this once" not in b.client.get("/dashboard/keys").get_data(
        as_text=True
    )
    api = dash_app.test_client()
    r = api.post(
        "/v1/sentiment",
        json={"text": "Great job!"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 200
    overview = b.client.get("/dashboard/").get_data(as_text=True)
    assert re.search(r'<span id="used">1</span> scored texts', overview)
    assert "<svg" in overview and "<table>" in overview
    p50 = re.search(r'<td class="p50">([0-9.]+)</td>', overview)
    assert p50 and 0 < float(p50.group(1)) < 10_000  # the call's latency, in ms
    # The latency chart plots the same number; the label table counts the call.
    assert f"p50: {float(p50.group(1)):.1f} ms" in overview
    label = r.get_json()["label"]
    assert re.search(rf'<td class="label-{label}">1</td>', overview)


def test_csrf_is_required(dash_app) -> None:
    b = Browser(dash_app)
    r = b.client.post(
        "/dashboard/signup", data={"email": "x@example.com", "password": PASSWORD}
    )
    assert r.status_code == 400 and "text/html" in r.content_type


def test_login_logout_wrong_password_and_rate_limit(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("bo@example.com")
    b.post("/dashboard/logout", form_from="/dashboard/")
    assert b.client.get("/dashboard/").status_code == 302
    for _ in range(5):
        r = b.post("/dashboard/login", {"email": "bo@example.com", "password": "nope"})
        assert r.status_code == 401
    r = b.post("/dashboard/login", {"email": "bo@example.com", "password": PASSWORD})
    assert r.status_code == 429


def test_cookies_are_httponly_and_lax(dash_app) -> None:
    b = Browser(dash_app)
    r = b.post("/dashboard/signup", {"email": "c@example.com", "password": PASSWORD})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_revoke_key_and_tenant_isolation(dash_app) -> None:
    a, c = Browser(dash_app), Browser(dash_app)
    a.signup("a@example.com")
    c.signup("c@example.com")
    secret = a.new_key()
    keys_page = a.client.get("/dashboard/keys").get_data(as_text=True)
    key_id = re.search(r"/dashboard/keys/(key_[0-9a-f]+)/revoke", keys_page).group(1)
    # The other tenant can neither see nor revoke it.
    assert key_id not in c.client.get("/dashboard/keys").get_data(as_text=True)
    assert c.client.get(f"/dashboard/keys/{key_id}/revoke").status_code == 404
    r = c.post(f"/dashboard/keys/{key_id}/revoke", form_from="/dashboard/keys")
    assert r.status_code == 404
    api = dash_app.test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    assert api.get("/v1/models", headers=auth).status_code == 200
    r = a.post(f"/dashboard/keys/{key_id}/revoke")
    assert r.status_code == 302
    assert api.get("/v1/models", headers=auth).status_code == 401


def test_members_invite_roles_and_isolation(dash_app) -> None:
    owner, member = Browser(dash_app), Browser(dash_app)
    owner.signup("owner@example.com")
    page = owner.post(
        "/dashboard/members/invite",
        {"email": "m@example.com"},
        form_from="/dashboard/members",
    ).get_data(as_text=True)
    link = re.search(r'id="invite-link">([^<]+)<', page).group(1)
    member.signup("m@example.com")
    path = link.replace("https://tonehub.example", "")
    assert link.startswith("https://tonehub.example/")  # the public URL, not Host
    stranger = Browser(dash_app)
    stranger.signup("stranger@example.com")
    assert stranger.client.get(path).status_code == 302  # not for this email
    confirm = member.client.get(path)
    assert confirm.status_code == 200 and b"Join the workspace" in confirm.data
    assert member.post(path).status_code == 302
    overview = member.client.get("/dashboard/").get_data(as_text=True)
    assert "owner&#39;s workspace" in overview or "owner's workspace" in overview
    assert member.client.get("/dashboard/").status_code == 200
    assert member.client.get("/dashboard/switch").status_code == 405
    r = member.post(
        "/dashboard/switch", {"workspace_id": "ws_notmine"}, form_from="/dashboard/"
    )
    # members cannot manage keys or billing
    assert member.client.get("/dashboard/keys").status_code == 403
    r = member.post(
        "/dashboard/billing/checkout", {"plan": "plus"}, form_from="/dashboard/billing"
    )
    assert r.status_code == 403
    assert member.post(path, form_from="/dashboard/").status_code == 302  # used up


def test_playground_counts_against_the_quota(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("p@example.com")
    page = b.post(
        "/dashboard/playground", {"text": "I love it. But the login is broken."}
    ).get_data(as_text=True)
    assert 'class="sentence positive"' in page and 'class="sentence negative"' in page
    overview = b.client.get("/dashboard/").get_data(as_text=True)
    assert '<span id="used">1</span>' in overview
    bad = b.post("/dashboard/playground", {"text": "   "})
    assert bad.status_code == 400 and "empty" in bad.get_data(as_text=True)


def test_settings_white_label(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("w@example.com")
    bad = b.post("/dashboard/settings", {"accent_color": "red"})
    assert bad.status_code == 400
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    import io

    r = b.post(
        "/dashboard/settings",
        {
            "display_name": "Acme Care",
            "accent_color": "#aa3300",
            "logo": (io.BytesIO(png), "logo.png"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    page = b.client.get("/dashboard/").get_data(as_text=True)
    assert "Acme Care" in page and "--accent: #aa3300" in page
    assert b.client.get("/dashboard/logo.png").data == png
    not_png = b.post(
        "/dashboard/settings",
        {"logo": (io.BytesIO(b"GIF89a"), "x.gif")},
        content_type="multipart/form-data",
    )
    assert not_png.status_code == 400


def test_upgrade_goes_to_stripe_checkout(dash_app, fake_stripe) -> None:
    b = Browser(dash_app)
    b.signup("u@example.com")
    r = b.post(
        "/dashboard/billing/checkout", {"plan": "plus"}, form_from="/dashboard/billing"
    )
    assert r.status_code == 303 and r.headers["Location"].startswith(fake_stripe.url)


def test_pages_render_for_a_signed_in_user(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("all@example.com")
    for path in (
        "/dashboard/",
        "/dashboard/keys",
        "/dashboard/billing",
        "/dashboard/connectors",
        "/dashboard/playground",
        "/dashboard/members",
        "/dashboard/settings",
        "/dashboard/password",
    ):
        page = b.client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert '<meta name="viewport"' in html and "<h1>" in html
        for input_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html):
            assert f'for="{input_id}"' in html, (path, input_id)


def test_sessions_end_at_sign_out_and_password_change(dash_app) -> None:
    b = Browser(dash_app)
    b.signup("s@example.com")
    copied = b.client.get_cookie("session").value
    b.post("/dashboard/logout", form_from="/dashboard/")
    thief = dash_app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/dashboard/").status_code == 302  # to sign-in
    b.post("/dashboard/login", {"email": "s@example.com", "password": PASSWORD})
    other = Browser(dash_app)
    other.post("/dashboard/login", {"email": "s@example.com", "password": PASSWORD})
    assert other.client.get("/dashboard/").status_code == 200
    r = b.post(
        "/dashboard/password", {"current": PASSWORD, "new": "another long secret"}
    )
    assert r.status_code == 302
    assert b.client.get("/dashboard/").status_code == 200  # this session continues
    assert other.client.get("/dashboard/").status_code == 302  # the other ended


def test_control_characters_and_bad_next_are_refused(dash_app) -> None:
    b = Browser(dash_app)
    r = b.post(
        "/dashboard/signup", {"email": "nul\x00x@example.com", "password": PASSWORD}
    )
    assert r.status_code == 400 and "text/html" in r.content_type
    b.signup("n@example.com")
    b.post("/dashboard/logout", form_from="/dashboard/")
    r = b.post(
        "/dashboard/login?next=/dashboard/%0d%0aX-Injected:1",
        {"email": "n@example.com", "password": PASSWORD},
    )
    assert r.status_code == 302 and r.headers["Location"] == "/dashboard/"
    for bad in ("//evil.com", "https://evil.com", "/\\evil.com"):
        b.post("/dashboard/logout", form_from="/dashboard/")
        r = b.post(
            f"/dashboard/login?next={bad}",
            {"email": "n@example.com", "password": PASSWORD},
        )
        assert r.headers["Location"] == "/dashboard/"


def test_dashboard_errors_are_html_with_security_headers(dash_app) -> None:
    c = dash_app.test_client()
    for method, path in (("GET", "/dashboard/nope"), ("GET", "/dashboard/logout")):
        r = c.open(path, method=method)
        assert r.status_code in (404, 405) and "text/html" in r.content_type
    page = c.get("/dashboard/login")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_parallel_guesses_get_five_checks_at_most(dash_app) -> None:
    from concurrent.futures import ThreadPoolExecutor

    Browser(dash_app).signup("race@example.com")
    token_client = Browser(dash_app)
    token = token_client.csrf("/dashboard/login")

    def guess(_):
        return token_client.client.post(
            "/dashboard/login",
            data={
                "csrf_token": token,
                "email": "race@example.com",
                "password": "wrong guess",
            },
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(24)))
    assert statuses.count(401) == 5 and statuses.count(429) == 19


def _workspace_of(app, email: str) -> tuple[str, str]:
    """(workspace id, user id) of a signed-up user."""
    from sqlalchemy import select

    from core import users
    from core.persistence.models import User

    with app.extensions["tonehub"].sessions() as s:
        user = s.scalar(select(User).where(User.email == email))
        return users.memberships(s, user.id)[0].workspace_id, user.id


def test_connector_and_member_forms_cannot_reach_another_tenant(dash_app) -> None:
    from core.persistence.models import Membership, SalesforceConnection, SlackChannel

    a, c = Browser(dash_app), Browser(dash_app)
    a.signup("a1@example.com")
    c.signup("c1@example.com")
    ws_a, user_a = _workspace_of(dash_app, "a1@example.com")
    with dash_app.extensions["tonehub"].sessions() as s:
        s.add(
            SlackChannel(
                team_id="T0A",
                channel_id="C0A",
                workspace_id=ws_a,
                enabled=True,
                mode="reactions",
                alert_threshold=50,
                reactions="{}",
            )
        )
        s.add(
            SalesforceConnection(
                workspace_id=ws_a,
                org_id="00DA",
                instance_url="https://a.my.salesforce.com",
                auth_kind="oauth",
                access_token="sealed",
            )
        )
        s.commit()
    r = c.post(
        "/dashboard/connectors/slack/channels/T0A/C0A",
        {"mode": "off"},
        form_from="/dashboard/connectors",
    )
    assert r.status_code == 404
    c.post("/dashboard/connectors/salesforce/disconnect", form_from="/dashboard/")
    r = c.post(f"/dashboard/members/{user_a}/remove", form_from="/dashboard/members")
    assert r.status_code in (302, 303, 404)
    with dash_app.extensions["tonehub"].sessions() as s:
        assert s.get(SlackChannel, ("T0A", "C0A")).mode == "reactions"
        from sqlalchemy import select

        conn = SalesforceConnection.workspace_id == ws_a
        assert s.scalar(select(SalesforceConnection).where(conn))
        assert s.get(Membership, (user_a, ws_a)).role == "owner"
    # The owner's own forms do work.
    r = a.post(
        "/dashboard/connectors/slack/channels/T0A/C0A",
        {"mode": "negative"},
        form_from="/dashboard/connectors",
    )
    assert r.status_code == 302
    with dash_app.extensions["tonehub"].sessions() as s:
        assert s.get(SlackChannel, ("T0A", "C0A")).mode == "negative"


def test_banners_at_80_and_100_percent_and_after_a_failed_payment(dash_app) -> None:
    from datetime import UTC, datetime

    from core.persistence.models import UsageDaily, Workspace

    b = Browser(dash_app)
    b.signup("quota@example.com")
    ws, _ = _workspace_of(dash_app, "quota@example.com")
    ext = dash_app.extensions["tonehub"]
    assert 'role="alert"' not in b.client.get("/dashboard/").get_data(as_text=True)

    def set_usage(count: int) -> str:
        with ext.sessions() as s:
            s.query(UsageDaily).filter_by(workspace_id=ws).delete()
            s.add(
                UsageDaily(
                    workspace_id=ws,
                    day=datetime.now(UTC).date(),
                    source="api",
                    api_key_id="k",
                    label="neutral",
                    count=count,
                )
            )
            s.commit()
        for key in ext.redis.scan_iter(f"th:quota:{ws}:*"):
            ext.redis.delete(key)  # re-seeded from the ledger
        return b.client.get("/dashboard/billing").get_data(as_text=True)

    assert "80% of this month" in set_usage(8_000)
    assert "quota is used up" in set_usage(10_000)
    with ext.sessions() as s:
        s.get(Workspace, ws).payment_failed_at = datetime.now(UTC)
        s.commit()
    assert "A payment failed" in b.client.get("/dashboard/").get_data(as_text=True)


def test_invites_are_emailed_when_an_smtp_server_is_set(
    tmp_path, redis, redis_url, scorer
) -> None:
    from tests.fakes.smtp import FakeSmtp

    smtp = FakeSmtp()
    smtp.start()
    app = _make_app(
        tmp_path,
        redis_url,
        scorer,
        SECRET_KEY="mail",
        SMTP_URL=smtp.url,
        MAIL_FROM="Tonehub <invites@tonehub.example>",
        PUBLIC_URL="https://tonehub.example",
    )
    try:
        owner = Browser(app)
        owner.signup("boss@example.com")
        r = owner.post(
            "/dashboard/members/invite",
            {"email": "New.Hire@Example.com"},
            form_from="/dashboard/members",
        )
        assert r.status_code == 303
        page = owner.client.get("/dashboard/members").get_data(as_text=True)
        assert "An invite was emailed to new.hire@example.com" in page
        assert 'id="invite-link"' not in page  # sent, not shown
        [mail] = smtp.mails
        assert mail.recipients == ["new.hire@example.com"]
        assert mail.message["From"] == "Tonehub <invites@tonehub.example>"
        link = re.search(
            r"https://tonehub\.example(/dashboard/invite/\S+)",
            mail.message.get_payload(),
        )
        joiner = Browser(app)
        joiner.signup("new.hire@example.com")
        assert joiner.post(link.group(1)).status_code == 302  # joined
        # The server refusing the login: the link is shown instead, with why.
        smtp.password = "rotated"
        page = owner.post(
            "/dashboard/members/invite",
            {"email": "second@example.com"},
            form_from="/dashboard/members",
        ).get_data(as_text=True)
        assert 'id="invite-link"' in page and "could not be sent" in page
    finally:
        _close_app(app)
        smtp.stop()
