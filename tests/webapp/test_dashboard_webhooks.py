"""The dashboard's webhook pages: add an endpoint (secret shown once), edit,
rotate, the delivery log with redeliver, the disabled banner, delete with
confirmation, owner-only and per workspace. CSRF is on, as in production."""

from __future__ import annotations

import re

from rq import Queue, SimpleWorker
from sqlalchemy import select

from core.persistence.models import User, WebhookEndpoint
from core.webhooks.events import emit
from tests.fakes.webhook_receiver import Answer
from tests.webapp.test_dashboard import Browser
from workers.queues import WEBHOOK_QUEUE, enqueue_webhook_dispatch


def _workspace(app, email: str) -> str:
    from core import users

    with app.extensions["tonehub"].sessions() as s:
        user = s.scalar(select(User).where(User.email == email))
        return users.memberships(s, user.id)[0].workspace_id


def _work(redis) -> None:
    enqueue_webhook_dispatch(redis)
    SimpleWorker([Queue(WEBHOOK_QUEUE, connection=redis)], connection=redis).work(
        burst=True
    )


def _add(b: Browser, url: str, *types: str) -> tuple[str, str, str]:
    """Add an endpoint; returns its id, secret and the page that showed it."""
    r = b.post(
        "/dashboard/webhooks",
        {"url": url, "description": "ops", "event_types": list(types)},
    )
    assert r.status_code == 303, r.get_data(as_text=True)
    endpoint_id = r.headers["Location"].rsplit("/", 1)[1]
    page = b.client.get(r.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', page).group(1)
    return endpoint_id, secret, page


def test_add_edit_log_redeliver_rotate_delete(jobs_app, receiver, redis) -> None:
    b = Browser(jobs_app)
    b.signup("owner@example.com")
    ws = _workspace(jobs_app, "owner@example.com")
    endpoint_id, secret, _ = _add(b, receiver.url + "/in", "usage.threshold_reached")
    # The secret is shown once only.
    page = b.client.get(f"/dashboard/webhooks/{endpoint_id}").get_data(as_text=True)
    assert secret not in page and "shown this once" not in page
    listing = b.client.get("/dashboard/webhooks").get_data(as_text=True)
    assert receiver.url + "/in" in listing and "usage.threshold_reached" in listing

    receiver.secrets = [secret]
    receiver.plan.append(Answer(500, body=b"busy"))
    with jobs_app.extensions["tonehub"].sessions() as s:
        event = emit(s, ws, "usage.threshold_reached", {"threshold_percent": 80})
        skipped = emit(s, ws, "job.failed", {"job_id": "job_x"})  # not subscribed
        s.commit()
        event_id, skipped_id = event.id, skipped.id
    _work(redis)
    page = b.client.get(f"/dashboard/webhooks/{endpoint_id}").get_data(as_text=True)
    assert event_id in page and ">500<" in page and "busy" in page
    assert skipped_id not in page
    assert "failing since" in page.lower()

    # Redeliver from the log: sent at once, same webhook-id, verified.
    r = b.post(
        f"/dashboard/webhooks/{endpoint_id}/events/{event_id}/redeliver",
        form_from=f"/dashboard/webhooks/{endpoint_id}",
    )
    assert r.status_code == 303
    _work(redis)
    assert [d.msg_id for d in receiver.deliveries] == [event_id, event_id]
    assert receiver.deliveries[-1].verified
    page = b.client.get(f"/dashboard/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "(manual)" in page and ">200<" in page

    # Edit: subscribe to everything, change the description.
    r = b.post(
        f"/dashboard/webhooks/{endpoint_id}",
        {"url": receiver.url + "/in", "description": "all events", "enabled": "on"},
    )
    assert r.status_code == 303
    with jobs_app.extensions["tonehub"].sessions() as s:
        row = s.get(WebhookEndpoint, endpoint_id)
        assert row.event_types == "[]" and row.description == "all events"
        assert row.enabled

    # An SSRF target is refused with a message, nothing saved.
    r = b.post(
        f"/dashboard/webhooks/{endpoint_id}",
        {"url": "https://169.254.169.254/latest", "enabled": "on"},
        form_from=f"/dashboard/webhooks/{endpoint_id}",
    )
    page = b.client.get(r.headers["Location"]).get_data(as_text=True)
    assert "only public addresses are allowed" in page
    with jobs_app.extensions["tonehub"].sessions() as s:
        assert s.get(WebhookEndpoint, endpoint_id).url == receiver.url + "/in"

    # Rotation: a new secret shown once; both sign during the window.
    r = b.post(
        f"/dashboard/webhooks/{endpoint_id}/rotate",
        form_from=f"/dashboard/webhooks/{endpoint_id}",
    )
    page = b.client.get(r.headers["Location"]).get_data(as_text=True)
    new_secret = re.search(r'id="new-secret">(whsec_[^<]+)<', page).group(1)
    assert new_secret != secret and "previous secret also signs" in page
    receiver.secrets = [new_secret]
    with jobs_app.extensions["tonehub"].sessions() as s:
        emit(s, ws, "job.succeeded", {"job_id": "job_y"})
        s.commit()
    _work(redis)
    last = receiver.deliveries[-1]
    assert last.verified and len(last.signatures) == 2

    # Delete asks first, then removes the endpoint.
    confirm = b.client.get(f"/dashboard/webhooks/{endpoint_id}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    r = b.post(f"/dashboard/webhooks/{endpoint_id}/delete")
    assert r.status_code == 303
    with jobs_app.extensions["tonehub"].sessions() as s:
        assert s.get(WebhookEndpoint, endpoint_id) is None


def test_disabled_endpoint_banner_and_enable_again(jobs_app, receiver, redis) -> None:
    b = Browser(jobs_app)
    b.signup("dis@example.com")
    ws = _workspace(jobs_app, "dis@example.com")
    endpoint_id, secret, _ = _add(b, receiver.url + "/gone")
    receiver.secrets = [secret]
    receiver.plan.append(Answer(410))  # Gone: Tonehub disables the endpoint
    with jobs_app.extensions["tonehub"].sessions() as s:
        emit(s, ws, "job.succeeded", {"job_id": "job_1"})
        s.commit()
    _work(redis)
    overview = b.client.get("/dashboard/").get_data(as_text=True)
    assert "1 webhook endpoint(s) failed for too long and were disabled" in overview
    with jobs_app.extensions["tonehub"].sessions() as s:
        emit(s, ws, "job.succeeded", {"job_id": "job_2"})
        s.commit()
    _work(redis)
    assert len(receiver.deliveries) == 1  # nothing sent while disabled
    page = b.client.get(f"/dashboard/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "Tonehub disabled this endpoint" in page and "1 event(s) wait" in page
    r = b.post(
        f"/dashboard/webhooks/{endpoint_id}",
        {"url": receiver.url + "/gone", "enabled": "on"},
    )
    assert r.status_code == 303
    _work(redis)
    assert [d.verified for d in receiver.deliveries] == [True, True]
    assert "were disabled" not in b.client.get("/dashboard/").get_data(as_text=True)


def test_webhook_pages_are_owner_only_and_per_workspace(jobs_app, receiver) -> None:
    a, c = Browser(jobs_app), Browser(jobs_app)
    a.signup("a@example.com")
    c.signup("c@example.com")
    endpoint_id, _, _ = _add(a, receiver.url + "/a")
    assert endpoint_id not in c.client.get("/dashboard/webhooks").get_data(as_text=True)
    for path in (
        f"/dashboard/webhooks/{endpoint_id}",
        f"/dashboard/webhooks/{endpoint_id}/delete",
    ):
        assert c.client.get(path).status_code == 404
    for path in (
        f"/dashboard/webhooks/{endpoint_id}",
        f"/dashboard/webhooks/{endpoint_id}/rotate",
        f"/dashboard/webhooks/{endpoint_id}/delete",
    ):
        r = c.post(
            path, {"url": "http://127.0.0.1:1/x"}, form_from="/dashboard/webhooks"
        )
        assert r.status_code == 404, path
    with jobs_app.extensions["tonehub"].sessions() as s:
        row = s.get(WebhookEndpoint, endpoint_id)
        assert row is not None and row.url == receiver.url + "/a"
    # Signed out: sent to sign in.
    anon = jobs_app.test_client()
    assert anon.get("/dashboard/webhooks").status_code == 302
