"""Billing state from Stripe: pure transitions, and the event handler against
the fake Stripe API through the real ``stripe`` library (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import accounts
from core.billing import (
    BillingConfig,
    BillingService,
    StripeGateway,
    apply_subscription,
    build_billing_service,
    choose_subscription,
    plan_in_force,
    snapshot_from_stripe,
)
from core.billing.state import SubscriptionSnapshot
from core.config import Settings
from core.errors import (
    BillingError,
    BillingNotConfigured,
    BillingUnavailable,
    InvalidRequest,
    InvalidSignature,
    NoBillingAccount,
    SubscriptionExists,
)
from core.persistence.db import make_session_factory
from core.persistence.models import StripeEvent, Workspace
from core.plans import PlanName
from tests.conftest import stripe_settings
from tests.fakes.stripe import FakeStripe, sign

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
PRICES = {"price_plus_monthly": PlanName.PLUS, "price_pro_monthly": PlanName.PRO}


def snap(status: str, *, sub: str = "sub_1", price: str = "price_plus_monthly", **kw):
    return SubscriptionSnapshot(
        id=sub,
        customer="cus_1",
        status=status,
        price_id=price,
        current_period_end=kw.get("end", NOW + timedelta(days=30)),
        cancel_at_period_end=kw.get("cancel", False),
    )


# --- pure state ------------------------------------------------------------------


def test_active_subscription_sets_its_plan() -> None:
    ws = Workspace(name="A", plan="basic")
    apply_subscription(ws, snap("active"), prices=PRICES, now=NOW)
    assert ws.plan == "plus" and ws.payment_failed_at is None
    apply_subscription(
        ws, snap("active", price="price_pro_monthly"), prices=PRICES, now=NOW
    )
    assert plan_in_force(ws, now=NOW).name is PlanName.PRO


def test_failed_payment_keeps_the_plan_for_the_grace_period() -> None:
    ws = Workspace(name="A", plan="basic")
    apply_subscription(ws, snap("active"), prices=PRICES, now=NOW)
    apply_subscription(ws, snap("past_due"), prices=PRICES, now=NOW)
    assert ws.payment_failed_at == NOW
    later = NOW + timedelta(days=2)
    apply_subscription(ws, snap("past_due"), prices=PRICES, now=later)
    assert ws.payment_failed_at == NOW  # the first failure starts the clock
    grace = timedelta(days=7)
    assert plan_in_force(ws, now=NOW + timedelta(days=6), grace=grace).name == "plus"
    assert plan_in_force(ws, now=NOW + timedelta(days=7), grace=grace).name == "basic"
    apply_subscription(ws, snap("active"), prices=PRICES, now=later)
    assert ws.payment_failed_at is None
    assert plan_in_force(ws, now=NOW + timedelta(days=9), grace=grace).name == "plus"


def test_cancel_at_period_end_keeps_the_plan_until_then() -> None:
    ws = Workspace(name="A", plan="basic")
    end = NOW + timedelta(days=10)
    apply_subscription(ws, snap("active", cancel=True, end=end), prices=PRICES, now=NOW)
    assert plan_in_force(ws, now=end - timedelta(seconds=1)).name == "plus"
    assert plan_in_force(ws, now=end).name == "basic"  # even if no event came
    apply_subscription(ws, snap("canceled", end=end), prices=PRICES, now=end)
    assert ws.plan == "basic"


def test_choose_the_subscription_that_entitles() -> None:
    def pick(*subs):
        return choose_subscription(list(subs), prices=PRICES).id

    old_dead = snap("canceled", sub="sub_old")
    new = snap("active", sub="sub_new")
    assert pick(old_dead, new) == pick(new, old_dead) == "sub_new"
    pro = snap("active", sub="sub_pro", price="price_pro_monthly")
    assert pick(new, pro) == "sub_pro"  # two paid checkouts: the bigger plan
    assert pick(snap("past_due", sub="sub_due"), new) == "sub_new"
    assert pick(snap("past_due", sub="sub_due"), old_dead) == "sub_due"
    older = SubscriptionSnapshot(
        "sub_a", "cus_1", "canceled", None, None, False, None, 1
    )
    newer = SubscriptionSnapshot(
        "sub_b", "cus_1", "canceled", None, None, False, None, 2
    )
    assert pick(older, newer) == "sub_b"
    assert choose_subscription([], prices=PRICES) is None


def test_no_subscription_at_all_means_basic() -> None:
    ws = Workspace(name="A", plan="basic")
    apply_subscription(ws, snap("active"), prices=PRICES, now=NOW)
    apply_subscription(ws, None, prices=PRICES, now=NOW)
    assert (ws.plan, ws.stripe_subscription_id) == ("basic", None)


@pytest.mark.parametrize(
    "status", ["canceled", "unpaid", "incomplete", "incomplete_expired"]
)
def test_dead_subscriptions_mean_basic(status: str) -> None:
    ws = Workspace(name="A", plan="basic")
    apply_subscription(ws, snap("active"), prices=PRICES, now=NOW)
    apply_subscription(ws, snap(status), prices=PRICES, now=NOW)
    assert ws.plan == "basic"


def test_snapshot_reads_period_from_items_and_from_old_api_versions() -> None:
    new = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "cancel_at_period_end": False,
        "metadata": {"workspace_id": "ws_1"},
        "items": {
            "data": [
                {
                    "price": {"id": "price_pro_monthly"},
                    "current_period_end": 1_800_000_000,
                }
            ]
        },
    }
    s = snapshot_from_stripe(new)
    assert (s.price_id, s.workspace_id) == ("price_pro_monthly", "ws_1")
    assert s.current_period_end == datetime.fromtimestamp(1_800_000_000, UTC)
    old = {
        **new,
        "items": {"data": [{"price": "price_pro_monthly"}]},
        "current_period_end": 1_700_000_000,
    }
    assert snapshot_from_stripe(old).current_period_end.year == 2023


# --- the service against the fake Stripe ---------------------------------------


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def billing(fake_stripe: FakeStripe) -> BillingService:
    settings = Settings.from_mapping(stripe_settings(fake_stripe))
    return build_billing_service(settings)


@pytest.fixture
def ws(sessions) -> str:
    with sessions() as s:
        return accounts.create_workspace(s, "Acme").id


def load(sessions, ws: str) -> Workspace:
    with sessions() as s:
        return s.get(Workspace, ws)


def state(sessions, ws: str) -> tuple:
    w = load(sessions, ws)
    return (
        w.plan,
        w.stripe_subscription_id,
        w.subscription_status,
        w.cancel_at_period_end,
        w.payment_failed_at is not None,
    )


def test_checkout_creates_the_customer_once(billing, fake_stripe, sessions, ws) -> None:
    with sessions() as s:
        first = billing.checkout(s, ws, "plus")
    with sessions() as s:
        second = billing.checkout(s, ws, "pro")
    assert first["url"].startswith(fake_stripe.url + "/c/pay/cs_test_")
    assert first["id"] != second["id"]
    assert len(fake_stripe.customers) == 1
    customer = load(sessions, ws).stripe_customer_id
    assert customer in fake_stripe.customers
    sent = fake_stripe.received("POST", "/v1/checkout/sessions")[0]
    assert sent.header("Authorization") == f"Bearer {fake_stripe.api_key}"
    session = fake_stripe.sessions[first["id"]]
    assert session["client_reference_id"] == ws and session["customer"] == customer
    assert session["success_url"].startswith("https://tonehub.example/")


def test_checkout_refuses_free_and_unknown_plans(billing, sessions, ws) -> None:
    with sessions() as s:
        for plan in ("basic", "gold"):
            with pytest.raises(InvalidRequest):
                billing.checkout(s, ws, plan)


def test_a_subscribed_workspace_is_sent_to_the_portal(
    billing, fake_stripe, sessions, ws
) -> None:
    with sessions() as s:
        checkout = billing.checkout(s, ws, "plus")
    fake_stripe.complete_checkout(checkout["id"])
    for event in fake_stripe.events:
        with sessions() as s:
            billing.handle_event(s, event, now=NOW)
    with sessions() as s:
        with pytest.raises(SubscriptionExists):
            billing.checkout(s, ws, "pro")
        url = billing.portal(s, ws)["url"]
    assert url.startswith(fake_stripe.url + "/p/session/")


def test_portal_needs_a_billing_account(billing, sessions, ws) -> None:
    with sessions() as s:
        with pytest.raises(NoBillingAccount):
            billing.portal(s, ws)


def test_stripe_errors_map_to_stable_codes(billing, fake_stripe, sessions, ws) -> None:
    fake_stripe.fail_next(429)
    with sessions() as s:
        with pytest.raises(BillingUnavailable):
            billing.checkout(s, ws, "plus")
    billing.config = BillingConfig(
        prices={PlanName.PLUS: "price_nope"}, public_url="https://x", grace=timedelta(1)
    )
    with sessions() as s:
        with pytest.raises(BillingError):
            billing.checkout(s, ws, "plus")
        with pytest.raises(BillingNotConfigured):
            billing.checkout(s, ws, "pro")


def test_wrong_api_key_is_a_billing_error(fake_stripe, sessions, ws) -> None:
    gateway = StripeGateway(
        "sk_test_wrong", webhook_secret="x", api_base=fake_stripe.url
    )
    with pytest.raises(BillingError):
        gateway.create_customer(ws, "Acme")
    assert fake_stripe.received("POST", "/v1/customers")  # it did call, and got 401


def _lifecycle(billing, fake_stripe, sessions, ws) -> list[dict]:
    with sessions() as s:
        checkout = billing.checkout(s, ws, "plus")
    sub = fake_stripe.complete_checkout(checkout["id"])
    fake_stripe.payment_failed(sub["id"])
    fake_stripe.pay(sub["id"])
    fake_stripe.cancel_at_period_end(sub["id"])
    return list(fake_stripe.events)


def test_events_in_any_order_and_duplicated_give_stripes_state(
    billing, fake_stripe, sessions, ws
) -> None:
    events = _lifecycle(billing, fake_stripe, sessions, ws)
    rng = random.Random(7)
    orders = [events, events[::-1]] + [
        rng.sample(events, len(events)) for _ in range(3)
    ]
    outcomes = []
    for order in orders:
        with sessions() as s:
            s.query(StripeEvent).delete()
            w = s.get(Workspace, ws)
            w.plan, w.stripe_subscription_id, w.subscription_status = (
                "basic",
                None,
                None,
            )
            s.commit()
        for event in order + order[:3]:  # the first three delivered twice
            with sessions() as s:
                billing.handle_event(s, event, now=NOW)
        outcomes.append(state(sessions, ws))
    # Stripe's final state: active plus, cancelling at the period's end, paid.
    assert set(outcomes) == {
        ("plus", events[0]["data"]["object"]["id"], "active", True, False)
    }


def test_duplicates_are_processed_once(billing, fake_stripe, sessions, ws) -> None:
    events = _lifecycle(billing, fake_stripe, sessions, ws)
    with sessions() as s:
        assert billing.handle_event(s, events[0], now=NOW) == "processed"
    with sessions() as s:
        assert billing.handle_event(s, events[0], now=NOW) == "duplicate"
        assert s.scalar(select(func.count()).select_from(StripeEvent)) == 1


def test_concurrent_duplicate_deliveries_apply_once(
    billing, fake_stripe, sessions, ws
) -> None:
    events = _lifecycle(billing, fake_stripe, sessions, ws)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        with sessions() as s:
            outcomes.append(billing.handle_event(s, events[1], now=NOW))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["duplicate"] * 5 + ["processed"]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(StripeEvent)) == 1
    assert load(sessions, ws).plan == "plus"


def test_a_stripe_outage_leaves_the_event_for_the_retry(
    billing, fake_stripe, sessions, ws
) -> None:
    events = _lifecycle(billing, fake_stripe, sessions, ws)
    fake_stripe.fail_next(500)
    fake_stripe.fail_next(500)
    fake_stripe.fail_next(500)  # the client's two retries fail too
    with sessions() as s:
        with pytest.raises(BillingUnavailable):
            billing.handle_event(s, events[0], now=NOW)
    with sessions() as s:
        assert s.get(StripeEvent, events[0]["id"]) is None
        assert billing.handle_event(s, events[0], now=NOW) == "processed"


def test_subscription_deleted_downgrades(billing, fake_stripe, sessions, ws) -> None:
    events = _lifecycle(billing, fake_stripe, sessions, ws)
    sub_id = events[0]["data"]["object"]["id"]
    fake_stripe.end_period(sub_id)
    with sessions() as s:
        assert billing.handle_event(s, fake_stripe.events[-1], now=NOW) == "processed"
    assert state(sessions, ws)[:3] == ("basic", sub_id, "canceled")


def test_signature_verification(billing, fake_stripe) -> None:
    event = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}}
    body, header = fake_stripe.signed(event)
    assert billing.gateway.verify_event(body, header)["id"] == "evt_1"
    stale = sign(body.decode(), fake_stripe.webhook_secret, int(NOW.timestamp()) - 301)
    wrong = sign(body.decode(), "whsec_other")
    for bad in (None, "", "garbage", "t=abc,v1=00", stale, wrong):
        with pytest.raises(InvalidSignature):
            billing.gateway.verify_event(body, bad)
    with pytest.raises(InvalidSignature):
        billing.gateway.verify_event(body + b" ", header)  # body changed


def test_all_orders_of_a_short_history(billing, fake_stripe, sessions, ws) -> None:
    with sessions() as s:
        checkout = billing.checkout(s, ws, "pro")
    fake_stripe.complete_checkout(checkout["id"])
    events = list(fake_stripe.events)
    finals = set()
    for order in itertools.permutations(events):
        with sessions() as s:
            s.query(StripeEvent).delete()
            w = s.get(Workspace, ws)
            w.plan, w.stripe_subscription_id = "basic", None
            s.commit()
        for event in order:
            with sessions() as s:
                billing.handle_event(s, event, now=NOW)
        finals.add(state(sessions, ws))
    assert finals == {
        ("pro", events[0]["data"]["object"]["id"], "active", False, False)
    }


def test_two_paid_checkouts_end_on_the_bigger_plan_in_any_order(
    billing, fake_stripe, sessions, ws
) -> None:
    with sessions() as s:
        billing.checkout(s, ws, "plus")
    customer = load(sessions, ws).stripe_customer_id
    # Two sessions paid before either event arrived (created at Stripe directly).
    plus, pro = (
        billing.gateway.create_checkout_session(
            customer=customer,
            price=price,
            workspace_id=ws,
            success_url="https://x/s",
            cancel_url="https://x/c",
        )[0]
        for price in ("price_plus_monthly", "price_pro_monthly")
    )
    pro_sub = fake_stripe.complete_checkout(pro)
    fake_stripe.complete_checkout(plus)
    events = list(fake_stripe.events)
    for order in (events, events[::-1]):
        with sessions() as s:
            s.query(StripeEvent).delete()
            s.commit()
        for event in order:
            with sessions() as s:
                billing.handle_event(s, event, now=NOW)
        assert state(sessions, ws)[:3] == ("pro", pro_sub["id"], "active")
    # The pro one ends: the plus one still pays, so plus (not basic).
    fake_stripe.cancel_at_period_end(pro_sub["id"])
    fake_stripe.end_period(pro_sub["id"])
    with sessions() as s:
        billing.handle_event(s, fake_stripe.events[-1], now=NOW)
    assert state(sessions, ws)[0] == "plus"
