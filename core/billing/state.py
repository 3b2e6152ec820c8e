"""Plan and subscription state from Stripe's subscription objects (pure).

Stripe may deliver webhooks late, twice, or in any order, so events are never
applied as deltas. Every billing event makes the caller fetch the customer's
subscriptions as Stripe has them *now*; ``choose_subscription`` picks the one
that entitles the workspace (a customer who paid two checkouts has two), and
``apply_subscription`` mirrors it. The workspace thus ends in Stripe's latest
state whatever order the events came in.

The plan in force (``plan_in_force``) is computed at request time from the
stored state, so "paid until the period ends" and "downgrade after the
payment grace period" need no timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.persistence.models import Workspace, as_utc
from core.plans import PLANS, Plan, PlanName

ACTIVE_STATUSES = frozenset({"active", "trialing"})
"""The subscription is paid up."""

DUNNING_STATUSES = frozenset({"past_due"})
"""A payment failed and Stripe is retrying: the plan holds for the grace period."""

DEFAULT_GRACE = timedelta(days=7)
"""How long a failed payment keeps the paid plan before basic applies."""


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """What Tonehub needs of a Stripe subscription object.

    Attributes:
        id: ``sub_...``.
        customer: ``cus_...``.
        status: Stripe's status (``active``, ``past_due``, ``canceled``, ...).
        price_id: The price of its first item.
        current_period_end: End of the paid period.
        cancel_at_period_end: Cancelled, effective at the period's end.
        workspace_id: ``metadata.workspace_id`` when present.
        created: When the subscription was created (Unix seconds).
    """

    id: str
    customer: str
    status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    workspace_id: str | None = None
    created: int = 0

    @property
    def live(self) -> bool:
        """Whether the subscription still entitles to a paid plan."""
        return self.status in ACTIVE_STATUSES | DUNNING_STATUSES


def snapshot_from_stripe(obj: Mapping[str, object]) -> SubscriptionSnapshot:
    """Read a subscription object as Stripe's API returns it (a plain dict).

    Since API version 2025-03-31 the period lives on the subscription items;
    older versions kept it on the subscription. Both are read.
    """
    items = obj.get("items")
    data = items.get("data", []) if isinstance(items, Mapping) else []
    first = data[0] if data and isinstance(data[0], Mapping) else {}
    price = first.get("price")
    price_id = price.get("id") if isinstance(price, Mapping) else price
    end = first.get("current_period_end") or obj.get("current_period_end")
    metadata = obj.get("metadata")
    ws = metadata.get("workspace_id") if isinstance(metadata, Mapping) else None
    return SubscriptionSnapshot(
        id=str(obj["id"]),
        customer=str(obj.get("customer")),
        status=str(obj.get("status")),
        price_id=str(price_id) if price_id else None,
        current_period_end=(
            datetime.fromtimestamp(int(str(end)), UTC) if end is not None else None
        ),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        workspace_id=str(ws) if ws else None,
        created=int(str(obj.get("created") or 0)),
    )


def choose_subscription(
    snapshots: list[SubscriptionSnapshot], *, prices: Mapping[str, PlanName]
) -> SubscriptionSnapshot | None:
    """The subscription that decides the workspace's plan.

    A paid-up one beats one in dunning, which beats any ended one; among
    equals the bigger plan, then the newest. With none live, the newest.
    """
    if not snapshots:
        return None

    def rank(s: SubscriptionSnapshot) -> tuple[int, int, int]:
        standing = 2 if s.status in ACTIVE_STATUSES else int(s.live)
        plan = prices.get(s.price_id or "")
        size = PLANS[plan].price_usd_cents if plan is not None else 0
        return (standing, size if standing else 0, s.created)

    return max(snapshots, key=rank)


def apply_subscription(
    workspace: Workspace,
    snapshot: SubscriptionSnapshot | None,
    *,
    prices: Mapping[str, PlanName],
    now: datetime,
) -> None:
    """Make the workspace mirror the subscription ``choose_subscription`` chose.

    Args:
        workspace: The workspace to update (not committed here).
        snapshot: The subscription as Stripe has it now; ``None``: the
            customer has none, so basic.
        prices: Stripe price id -> plan.
        now: Current time (stamps the first failed payment).
    """
    if snapshot is None:
        workspace.plan = PlanName.BASIC.value
        workspace.stripe_subscription_id = None
        workspace.subscription_status = None
        workspace.current_period_end = None
        workspace.cancel_at_period_end = False
        workspace.payment_failed_at = None
        workspace.billing_updated_at = now
        return
    workspace.stripe_subscription_id = snapshot.id
    workspace.subscription_status = snapshot.status
    workspace.current_period_end = snapshot.current_period_end
    workspace.cancel_at_period_end = snapshot.cancel_at_period_end
    paid = prices.get(snapshot.price_id or "")
    if snapshot.live and paid is not None:
        workspace.plan = paid.value
    elif snapshot.live:
        pass  # an unknown price: keep the plan, the operator must map it
    else:
        workspace.plan = PlanName.BASIC.value
    if snapshot.status in DUNNING_STATUSES:
        workspace.payment_failed_at = workspace.payment_failed_at or now
    else:
        workspace.payment_failed_at = None
    workspace.billing_updated_at = now


def plan_in_force(
    workspace: Workspace, *, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> Plan:
    """The plan whose limits apply to the workspace right now.

    Args:
        workspace: The workspace.
        now: Current time.
        grace: How long a failed payment keeps the paid plan.

    Returns:
        ``workspace.plan``, or basic once a cancelled subscription's period
        has ended or a failed payment's grace period has run out.
    """
    plan = PLANS.get(PlanName(workspace.plan), PLANS[PlanName.BASIC])
    if plan.name is PlanName.BASIC:
        return plan
    ends = as_utc(workspace.current_period_end)
    if workspace.cancel_at_period_end and ends is not None and now >= ends:
        return PLANS[PlanName.BASIC]
    failed = as_utc(workspace.payment_failed_at)
    if failed is not None and now >= failed + grace:
        return PLANS[PlanName.BASIC]
    return plan
