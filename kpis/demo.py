"""Demo targets: a KGI target and the article's rate targets, so a demo tree shows 逆算."""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import timezone

from kpis.catalogue import BUILTIN_BY_KEY
from kpis.periods import Grain, Period, period_containing
from kpis.scopes import KpiScope
from kpis.selectors import kpi_values
from kpis.targets import kpi_target_set
from tenants.context import tenant_context
from tenants.models import Tenant

# The source article's reference rates, as the demo's rate targets (percent).
RATE_TARGETS = {
    "win_rate": Decimal(25),
    "opportunity_rate": Decimal(50),
    "meeting_rate": Decimal(20),
}
GROWTH = Decimal("1.1")


@dataclass(frozen=True)
class DemoTargets:
    periods: list[Period]
    kgi: dict[str, Decimal]


def demo_targets_seed(*, tenant: Tenant, today: date | None = None) -> DemoTargets:
    """Set, for this month and the previous one, a won-deals target of 110 % of the month
    before each (at least 1) and the article's rate targets, for the whole tenant."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    today = today or timezone.now().astimezone(zone).date()
    current = period_containing(Grain.MONTH, today, tenant.fiscal_year_start_month)
    periods = [current.previous(), current]
    scope = KpiScope.tenant()
    won = BUILTIN_BY_KEY["won_deals"]
    with tenant_context(tenant):
        history = kpi_values(
            tenant=tenant, kpis=[won], periods=[p.previous() for p in periods], scopes=[scope]
        )
    kgi: dict[str, Decimal] = {}
    for period in periods:
        before = history[(won.key, period.previous(), scope)].value or Decimal(0)
        target = Decimal(max(1, math.ceil(before * GROWTH)))
        kgi[period.label] = target
        kpi_target_set(
            tenant=tenant, kpi_key=won.key, period=period, scope=scope, value=target, set_by=None
        )
        for key, value in RATE_TARGETS.items():
            kpi_target_set(
                tenant=tenant, kpi_key=key, period=period, scope=scope, value=value, set_by=None
            )
    return DemoTargets(periods=periods, kgi=kgi)
