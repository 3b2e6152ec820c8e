"""Plans: Basic, Plus and Pro with their quotas and rate limits, in one place.

The unit of the quota is one scored text (a batch of 40 costs 40). The rate
limit counts requests per workspace with a token bucket: ``rate_per_second``
tokens flow in, at most ``burst`` are held.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import InvalidRequest


class PlanName(StrEnum):
    """A plan's stable name (stored on the workspace, sent in API answers)."""

    BASIC = "basic"
    PLUS = "plus"
    PRO = "pro"


@dataclass(frozen=True)
class Plan:
    """What a plan costs and allows.

    Attributes:
        name: The plan's stable name.
        title: Name shown to people.
        price_usd_cents: Monthly price; 0 for the free plan.
        monthly_quota: Scored texts per calendar month (UTC); ``None``: unlimited.
        rate_per_second: Requests per second, sustained.
        burst: Requests that may arrive at once.
    """

    name: PlanName
    title: str
    price_usd_cents: int
    monthly_quota: int | None
    rate_per_second: int
    burst: int

    @property
    def paid(self) -> bool:
        """Whether the plan is sold through Stripe."""
        return self.price_usd_cents > 0


PLANS: dict[PlanName, Plan] = {
    PlanName.BASIC: Plan(PlanName.BASIC, "Basic", 0, 10_000, 10, 20),
    PlanName.PLUS: Plan(PlanName.PLUS, "Plus", 4_900, 100_000, 50, 100),
    PlanName.PRO: Plan(PlanName.PRO, "Pro", 19_900, None, 200, 400),
}
"""Every plan by name."""

DEFAULT_PLAN = PlanName.BASIC
"""New workspaces start here, the development workspace included."""


def get_plan(name: str) -> Plan:
    """The plan called ``name``.

    Raises:
        InvalidRequest: No such plan (``field="plan"``).
    """
    try:
        return PLANS[PlanName(name)]
    except ValueError:
        names = ", ".join(p.value for p in PlanName)
        raise InvalidRequest(
            f"Unknown plan {name!r}; plans are {names}.", field="plan"
        ) from None
