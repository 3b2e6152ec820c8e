"""Billing flows: Checkout, Customer Portal and Stripe webhook events.

Webhook handling is idempotent by event id and independent of delivery order:
each event only tells *which* subscription changed; the subscription is then
fetched from Stripe and mirrored (``core.billing.state``). Processing holds
the workspace's row lock from the fetch to the commit, so two concurrent
deliveries cannot write an older snapshot over a newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.billing.state import (
    apply_subscription,
    choose_subscription,
    plan_in_force,
    snapshot_from_stripe,
)
from core.billing.stripe_gateway import StripeGateway
from core.errors import (
    BillingNotConfigured,
    InvalidRequest,
    NoBillingAccount,
    NotFound,
    SubscriptionExists,
)
from core.persistence.models import StripeEvent, Workspace, as_utc
from core.plans import PlanName, get_plan

logger = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
"""Events that change a workspace's billing state."""


@dataclass(frozen=True)
class BillingConfig:
    """Billing settings.

    Attributes:
        prices: Plan -> Stripe price id (only paid plans).
        public_url: Where the dashboard lives (Checkout returns there).
        grace: How long a failed payment keeps the paid plan.
    """

    prices: Mapping[PlanName, str]
    public_url: str
    grace: timedelta

    @property
    def plans_by_price(self) -> dict[str, PlanName]:
        """Stripe price id -> plan."""
        return {price: plan for plan, price in self.prices.items() if price}


def _lock_workspace(session: Session, workspace_id: str) -> Workspace | None:
    # A no-op UPDATE takes the row lock on PostgreSQL and the write lock on
    # SQLite, both held to commit: billing changes of one workspace serialise.
    session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(id=Workspace.id)
        .execution_options(synchronize_session=False)
    )
    workspace = session.get(Workspace, workspace_id, populate_existing=True)
    return workspace


class BillingService:
    """Checkout, Portal and webhook handling for workspaces.

    Args:
        gateway: The Stripe gateway.
        config: Prices, public URL, grace period.
        on_change: Called with a workspace id after its billing state
            changed (the web app drops its cached plan).
    """

    def __init__(
        self,
        gateway: StripeGateway,
        config: BillingConfig,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.on_change = on_change

    def checkout(
        self, session: Session, workspace_id: str, plan: str
    ) -> dict[str, str]:
        """Start a Stripe Checkout for a paid plan.

        Returns:
            ``{"id", "url", "plan"}`` of the Checkout Session.

        Raises:
            InvalidRequest: Not a paid plan.
            SubscriptionExists: A live subscription exists (use the portal).
            BillingUnavailable, BillingError: Stripe failed or refused.
            BillingNotConfigured: No price for the plan.
        """
        target = get_plan(plan)
        if not target.paid:
            raise InvalidRequest(
                "Checkout is for the paid plans 'plus' and 'pro'.", field="plan"
            )
        price = self.config.prices.get(target.name)
        if not price:
            raise BillingNotConfigured(f"No Stripe price is configured for {plan}.")
        workspace = _lock_workspace(session, workspace_id)
        if workspace is None:
            raise NotFound(f"Workspace {workspace_id} not found.")
        live = workspace.subscription_status in ("active", "trialing", "past_due")
        if workspace.stripe_customer_id is None:
            workspace.stripe_customer_id = self.gateway.create_customer(
                workspace.id, workspace.name
            )
        elif not live:
            # Stripe may know of a subscription whose events have not arrived.
            subs = self.gateway.list_subscriptions(workspace.stripe_customer_id)
            live = any(snapshot_from_stripe(s).live for s in subs)
        if live:
            session.commit()
            raise SubscriptionExists(
                "This workspace already has a subscription; change or cancel it "
                "in the customer portal (POST /v1/billing/portal)."
            )
        if workspace.pending_checkout_id:
            # One open checkout at a time: two paid pages would be two
            # subscriptions (and two charges).
            self.gateway.expire_checkout_session(workspace.pending_checkout_id)
        base = self.config.public_url.rstrip("/")
        checkout_id, url = self.gateway.create_checkout_session(
            customer=workspace.stripe_customer_id,
            price=price,
            workspace_id=workspace_id,
            success_url=f"{base}/billing/complete",
            cancel_url=f"{base}/billing/cancelled",
        )
        workspace.pending_checkout_id = checkout_id
        session.commit()
        logger.info("Checkout %s started for workspace %s", checkout_id, workspace_id)
        return {"id": checkout_id, "url": url, "plan": target.name.value}

    def portal(self, session: Session, workspace_id: str) -> dict[str, str]:
        """A Customer Portal URL for the workspace's Stripe customer.

        Raises:
            NoBillingAccount: The workspace never started a checkout.
        """
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace.stripe_customer_id is None:
            raise NoBillingAccount(
                "This workspace has no billing account yet; start with "
                "POST /v1/billing/checkout."
            )
        base = self.config.public_url.rstrip("/")
        url = self.gateway.create_portal_session(
            customer=workspace.stripe_customer_id,
            return_url=f"{base}/billing/complete",
        )
        return {"url": url}

    def handle_event(
        self, session: Session, event: Mapping[str, Any], *, now: datetime | None = None
    ) -> str:
        """Apply one verified Stripe event, at most once.

        Returns:
            ``"processed"``, ``"duplicate"``, ``"ignored"`` (not a billing
            event) or ``"unknown_workspace"``.
        """
        now = now or datetime.now(UTC)
        event_id, kind = str(event["id"]), str(event["type"])
        if session.get(StripeEvent, event_id) is not None:
            return "duplicate"
        outcome, workspace_id = "ignored", None
        if kind in SUBSCRIPTION_EVENTS:
            obj = event["data"]["object"]  # a dict: checked by verify_event
            workspace_id = self._workspace_for(session, obj)
            outcome = "unknown_workspace"
            if workspace_id is not None:
                outcome = self._sync(session, workspace_id, obj, now=now)
        session.add(
            StripeEvent(
                id=event_id, type=kind, workspace_id=workspace_id, outcome=outcome
            )
        )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if session.get(StripeEvent, event_id) is not None:
                return "duplicate"  # the same event, delivered twice at once
            raise
        logger.info("Stripe event %s (%s): %s", event_id, kind, outcome)
        if outcome == "processed" and workspace_id and self.on_change:
            self.on_change(workspace_id)
        return outcome

    def _workspace_for(self, session: Session, obj: Mapping[str, Any]) -> str | None:
        metadata = obj.get("metadata")
        for candidate in (
            _text(obj.get("client_reference_id")),
            _text(metadata.get("workspace_id"))
            if isinstance(metadata, Mapping)
            else None,
        ):
            if candidate and session.get(Workspace, candidate) is not None:
                return candidate
        customer = _text(obj.get("customer"))
        if customer:
            found = session.scalar(
                select(Workspace.id).where(Workspace.stripe_customer_id == customer)
            )
            if found is not None:
                return str(found)
        return None

    def _sync(
        self,
        session: Session,
        workspace_id: str,
        obj: Mapping[str, Any],
        *,
        now: datetime,
    ) -> str:
        workspace = _lock_workspace(session, workspace_id)
        if workspace is None:
            return "unknown_workspace"
        customer = workspace.stripe_customer_id or _text(obj.get("customer"))
        if customer is None:
            return "unknown_workspace"
        if workspace.stripe_customer_id is None:
            owner = session.scalar(
                select(Workspace.id).where(Workspace.stripe_customer_id == customer)
            )
            if owner is not None and owner != workspace_id:
                logger.warning(
                    "Stripe customer %s belongs to %s, not %s: event ignored",
                    customer,
                    owner,
                    workspace_id,
                )
                return "customer_mismatch"
            workspace.stripe_customer_id = customer
        snapshots = [
            snapshot_from_stripe(sub)
            for sub in self.gateway.list_subscriptions(customer)
        ]
        prices = self.config.plans_by_price
        live = [s for s in snapshots if s.live]
        if len(live) > 1:
            logger.warning(
                "Workspace %s: customer %s has %d live subscriptions (%s); the "
                "best one applies, refund the others",
                workspace_id,
                customer,
                len(live),
                ", ".join(s.id for s in live),
            )
        chosen = choose_subscription(snapshots, prices=prices)
        apply_subscription(workspace, chosen, prices=prices, now=now)
        return "processed"

    def status(
        self, session: Session, workspace_id: str, *, now: datetime
    ) -> dict[str, Any]:
        """The workspace's billing state as the API and dashboard show it."""
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            raise NotFound(f"Workspace {workspace_id} not found.")
        in_force = plan_in_force(workspace, now=now, grace=self.config.grace)
        failed = as_utc(workspace.payment_failed_at)
        ends = as_utc(workspace.current_period_end)
        downgrade_at = None
        if failed is not None:
            downgrade_at = failed + self.config.grace
        elif workspace.cancel_at_period_end and ends is not None:
            downgrade_at = ends
        subscription = None
        if workspace.stripe_subscription_id:
            subscription = {
                "id": workspace.stripe_subscription_id,
                "status": workspace.subscription_status,
                "current_period_end": ends,
                "cancel_at_period_end": workspace.cancel_at_period_end,
            }
        return {
            "plan": in_force.name.value,
            "subscribed_plan": workspace.plan,
            "monthly_quota": in_force.monthly_quota,
            "payment_failed": failed is not None,
            "payment_failed_at": failed,
            "downgrade_at": downgrade_at,
            "subscription": subscription,
            "has_billing_account": workspace.stripe_customer_id is not None,
        }

    def plan_of(self, workspace: Workspace, *, now: datetime) -> PlanName:
        """The plan in force for a workspace."""
        return plan_in_force(workspace, now=now, grace=self.config.grace).name


def _text(value: object) -> str | None:
    """A non-empty string field of a Stripe object, else ``None``."""
    ok = isinstance(value, str) and 0 < len(value) <= 255
    return value if ok else None  # type: ignore[return-value]
