"""Billing: plan state from Stripe, Checkout and the Customer Portal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from core.billing.service import BillingConfig, BillingService
from core.billing.state import (
    SubscriptionSnapshot,
    apply_subscription,
    choose_subscription,
    plan_in_force,
    snapshot_from_stripe,
)
from core.billing.stripe_gateway import StripeGateway
from core.config import Settings
from core.plans import PlanName


def build_billing_service(
    settings: Settings, *, on_change: Callable[[str], None] | None = None
) -> BillingService:
    """The billing service configured from settings (Stripe may be unset).

    Args:
        settings: Stripe keys, prices, public URL, grace period.
        on_change: Called with a workspace id when its billing state changed.
    """
    gateway = StripeGateway(
        settings.stripe_secret_key,
        webhook_secret=settings.stripe_webhook_secret,
        api_base=settings.stripe_api_base,
    )
    config = BillingConfig(
        prices={
            PlanName.PLUS: settings.stripe_price_plus,
            PlanName.PRO: settings.stripe_price_pro,
        },
        public_url=settings.public_url,
        grace=timedelta(days=settings.payment_grace_days),
    )
    return BillingService(gateway, config, on_change=on_change)


__all__ = [
    "BillingConfig",
    "BillingService",
    "StripeGateway",
    "SubscriptionSnapshot",
    "apply_subscription",
    "build_billing_service",
    "choose_subscription",
    "plan_in_force",
    "snapshot_from_stripe",
]
