"""Checkout, portal and the Stripe webhook through the real app, against the
fake Stripe API (real ``stripe`` library), events signed as Stripe signs them."""

from __future__ import annotations

import json
import random
import time

import pytest
from sqlalchemy import func, select

from core.persistence.models import StripeEvent, Workspace
from tests.fakes.stripe import sign
from tests.webapp.conftest import check_against_spec


@pytest.fixture
def sclient(stripe_app):
    return stripe_app.test_client()


@pytest.fixture
def owner(stripe_app):
    from tests.conftest import ApiKeyActions

    ws, _, secret = ApiKeyActions(stripe_app).issue("Acme")
    return ws, {"Authorization": f"Bearer {secret}"}


def post_event(client, fake, event, *, timestamp=None, secret=None):
    body, header = fake.signed(event, timestamp)
    if secret is not None:
        header = sign(body.decode(), secret, timestamp)
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def stored_events(app) -> int:
    with app.extensions["tonehub"].sessions() as s:
        return s.scalar(select(func.count()).select_from(StripeEvent))


def test_checkout_then_webhook_moves_the_workspace_to_plus(
    stripe_app, sclient, fake_stripe, owner
) -> None:
    ws, auth = owner
    before = sclient.post("/v1/sentiment", json={"text": "hello"}, headers=auth)
    assert before.headers["X-Quota-Limit"] == "10000"
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    assert checkout.status_code == 200, checkout.get_data(as_text=True)
    body = checkout.get_json()
    assert body["plan"] == "plus" and body["url"].startswith(fake_stripe.url)
    fake_stripe.complete_checkout(body["id"])
    events = list(fake_stripe.events)
    assert [e["type"] for e in events] == [
        "customer.subscription.created",
        "checkout.session.completed",
        "invoice.paid",
    ]
    for event in random.Random(3).sample(events, 3) + events:  # shuffled, repeated
        response = post_event(sclient, fake_stripe, event)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert stored_events(stripe_app) == 3
    after = sclient.post("/v1/sentiment", json={"text": "hello"}, headers=auth)
    assert after.headers["X-Quota-Limit"] == "100000"
    assert after.headers["RateLimit-Limit"] == "100"
    usage = sclient.get("/v1/usage", headers=auth).get_json()
    assert usage["plan"] == "plus" and usage["period"]["limit"] == 100_000
    assert usage["period"]["used"] == 2
    billing = sclient.get("/v1/billing", headers=auth).get_json()
    assert billing["plan"] == "plus" and billing["subscription"]["status"] == "active"
    assert billing["payment_failed"] is False


def test_failed_payment_is_visible_and_grace_then_basic(
    stripe_app, sclient, fake_stripe, owner
) -> None:
    ws, auth = owner
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "pro"}, headers=auth)
    sub = fake_stripe.complete_checkout(checkout.get_json()["id"])
    fake_stripe.payment_failed(sub["id"])
    for event in fake_stripe.events:
        assert post_event(sclient, fake_stripe, event).status_code == 200
    billing = sclient.get("/v1/billing", headers=auth).get_json()
    assert billing["plan"] == "pro" and billing["payment_failed"] is True
    assert billing["downgrade_at"] is not None
    with stripe_app.extensions["tonehub"].sessions() as s:  # 8 days pass
        w = s.get(Workspace, ws)
        w.payment_failed_at = w.payment_failed_at.replace(year=2020)
        s.commit()
    stripe_app.extensions["tonehub"].auth.forget_workspace(ws)  # a hand edit
    assert sclient.get("/v1/billing", headers=auth).get_json()["plan"] == "basic"
    response = sclient.post("/v1/sentiment", json={"text": "hi"}, headers=auth)
    assert response.headers["X-Quota-Limit"] == "10000"


def test_bad_signatures_are_400_with_no_side_effect(
    stripe_app, sclient, fake_stripe, owner
) -> None:
    ws, auth = owner
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    fake_stripe.complete_checkout(checkout.get_json()["id"])
    event = fake_stripe.events[0]
    stale = post_event(sclient, fake_stripe, event, timestamp=int(time.time()) - 301)
    wrong = post_event(sclient, fake_stripe, event, secret="whsec_attacker")
    missing = sclient.post("/webhooks/stripe", json=event)
    for response in (stale, wrong, missing):
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_signature"
    garbage = sclient.post(
        "/webhooks/stripe", data=b"\xff\xfe", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert garbage.status_code == 400
    assert stored_events(stripe_app) == 0
    assert sclient.get("/v1/billing", headers=auth).get_json()["plan"] == "basic"
    # A signed body that is not an event is refused as such.
    body = b'["not", "an", "event"]'
    not_event = sclient.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sign(body.decode(), fake_stripe.webhook_secret)},
    )
    assert not_event.status_code == 400
    assert not_event.get_json()["error"]["code"] == "invalid_json"


def test_other_events_are_acknowledged_and_ignored(sclient, fake_stripe) -> None:
    event = {"id": "evt_x", "type": "charge.refunded", "data": {"object": {}}}
    response = post_event(sclient, fake_stripe, event)
    assert response.get_json() == {"received": True, "outcome": "ignored"}


def test_checkout_and_portal_errors(sclient, fake_stripe, owner, spec) -> None:
    _, auth = owner
    portal = sclient.post("/v1/billing/portal", headers=auth)
    assert portal.status_code == 409
    assert portal.get_json()["error"]["code"] == "no_billing_account"
    free = sclient.post("/v1/billing/checkout", json={"plan": "basic"}, headers=auth)
    assert free.status_code == 400 and free.get_json()["error"]["field"] == "plan"
    fake_stripe.fail_next(429)
    busy = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    assert busy.status_code == 503
    assert busy.get_json()["error"]["code"] == "billing_unavailable"
    ok = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    check_against_spec(spec, "/v1/billing/checkout", "post", ok)
    portal = sclient.post("/v1/billing/portal", headers=auth)
    assert portal.status_code == 200
    check_against_spec(spec, "/v1/billing/portal", "post", portal)


def test_billing_not_configured(client, auth) -> None:
    response = client.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "billing_not_configured"
    hook = client.post(
        "/webhooks/stripe", data=b"{}", headers={"Stripe-Signature": "x"}
    )
    assert hook.status_code == 503


def test_a_second_checkout_expires_the_first(stripe_app, sclient, fake_stripe, owner):
    _, auth = owner
    first = sclient.post("/v1/billing/checkout", json={"plan": "pro"}, headers=auth)
    second = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    first_id, second_id = first.get_json()["id"], second.get_json()["id"]
    assert fake_stripe.sessions[first_id]["status"] == "expired"
    assert fake_stripe.sessions[second_id]["status"] == "open"
    with pytest.raises(KeyError):
        fake_stripe.complete_checkout(first_id)  # the old page can no longer be paid
    fake_stripe.complete_checkout(second_id)
    for event in fake_stripe.events:
        post_event(sclient, fake_stripe, event)
    third = sclient.post("/v1/billing/checkout", json={"plan": "pro"}, headers=auth)
    assert third.status_code == 409
    assert third.get_json()["error"]["code"] == "subscription_exists"


def test_checkout_sees_a_subscription_whose_events_are_late(
    stripe_app, sclient, fake_stripe, owner
):
    _, auth = owner
    first = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    fake_stripe.complete_checkout(first.get_json()["id"])  # no event delivered yet
    again = sclient.post("/v1/billing/checkout", json={"plan": "pro"}, headers=auth)
    assert again.status_code == 409


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_1", "type": "customer.subscription.updated", "data": "x"},
        {"id": "evt_1", "type": "customer.subscription.updated", "data": {}},
        {"id": None, "type": "invoice.paid", "data": {"object": {}}},
        {"id": {"a": 1}, "type": "invoice.paid", "data": {"object": {}}},
        {"id": "evt_1", "type": "\ud800", "data": {"object": {}}},
        {"id": "evt_1", "data": {"object": {}}},
    ],
)
def test_signed_events_of_the_wrong_shape_are_400(
    stripe_app, sclient, fake_stripe, event
):
    body = json.dumps(event).encode()
    header = sign(body.decode(), fake_stripe.webhook_secret)
    response = sclient.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert stored_events(stripe_app) == 0


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": "x", "customer": "cus_nope"},
        {"customer": {"a": 1}},
        {"metadata": {"workspace_id": ["x"]}},
        {"id": 5, "client_reference_id": 7},
    ],
)
def test_signed_events_with_odd_objects_do_not_500(
    stripe_app, sclient, fake_stripe, obj
):
    event = {
        "id": "evt_odd",
        "type": "customer.subscription.updated",
        "data": {"object": obj},
    }
    response = post_event(sclient, fake_stripe, event)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "unknown_workspace"


def test_deeply_nested_signed_body_is_400(sclient, fake_stripe):
    body = ("[" * 100_000 + "]" * 100_000).encode()
    header = sign(body.decode(), fake_stripe.webhook_secret)
    response = sclient.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400


def test_the_pages_stripe_returns_to_exist(stripe_app, sclient, fake_stripe, owner):
    _, auth = owner
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    session = fake_stripe.sessions[checkout.get_json()["id"]]
    for url in (session["success_url"], session["cancel_url"]):
        page = sclient.get(url.removeprefix("https://tonehub.example"))
        assert page.status_code == 200 and page.mimetype == "text/html"


def test_set_plan_overrides_a_cancelled_subscription(
    stripe_app, sclient, fake_stripe, owner
):
    ws, auth = owner
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    sub = fake_stripe.complete_checkout(checkout.get_json()["id"])
    fake_stripe.cancel_at_period_end(sub["id"])
    fake_stripe.end_period(sub["id"])
    for event in fake_stripe.events:
        post_event(sclient, fake_stripe, event)
    assert sclient.get("/v1/billing", headers=auth).get_json()["plan"] == "basic"
    runner = stripe_app.test_cli_runner()
    assert runner.invoke(args=["set-plan", ws, "pro"]).exit_code == 0
    assert sclient.get("/v1/billing", headers=auth).get_json()["plan"] == "pro"


def test_non_ascii_signature_is_400(sclient):
    response = sclient.post(
        "/webhooks/stripe", data=b"{}", headers={"Stripe-Signature": "t=1,v1=\u00e9"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signature"


def test_an_event_naming_another_workspaces_customer_is_not_applied(
    stripe_app, sclient, fake_stripe, owner, keys
):
    ws, auth = owner
    checkout = sclient.post("/v1/billing/checkout", json={"plan": "plus"}, headers=auth)
    assert checkout.status_code == 200
    with stripe_app.extensions["tonehub"].sessions() as s:
        customer = s.get(Workspace, ws).stripe_customer_id
    from tests.conftest import ApiKeyActions

    other, _, _ = ApiKeyActions(stripe_app).issue("Other")
    event = {
        "id": "evt_cross",
        "type": "customer.subscription.updated",
        "data": {
            "object": {
                "id": "sub_x",
                "customer": customer,
                "metadata": {"workspace_id": other},
            }
        },
    }
    response = post_event(sclient, fake_stripe, event)
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "customer_mismatch"
    with stripe_app.extensions["tonehub"].sessions() as s:
        assert s.get(Workspace, other).stripe_customer_id is None
