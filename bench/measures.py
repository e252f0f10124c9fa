"""Benchmark: reading a KPI over a registered measure (KpiMeasureValue) vs a built-in one.

A demo-seeded tenant (BENCH_MEASURES_LEADS leads over 6 months, 10,000 by default) gets a
registered measure (its calls, counted again) rebuilt alongside its snapshots. Each run reads
one month for the tenant, every team and every rep (a leaderboard's read): the floor reads
`connects_per_call` (a tenant KPI over built-in columns only), ours `registered_per_call`
(the registered count over the built-in one: 1 wherever there are calls, checked). The
narrow table costs one more indexed query per read, whatever the number of KPIs or scopes:
goal, ours at most 1.5 x the floor. PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any

SLUG = "bench-measures"
LEADS = int(os.environ.get("BENCH_MEASURES_LEADS", "10000"))
MONTHS = 6
TODAY = dt.date(2026, 10, 1)
RUNS = 30
GOAL = 1.5


def _measure() -> Any:
    from django.db.models import Count

    from kpis.aggregates import attributed_daily, bounds, team_on
    from kpis.measures import Measure, register_measure
    from pipeline.models import Activity, DirtyKind

    def daily(*, tenant_id: int, start: dt.date, end: dt.date, zone: Any) -> Any:
        lo, hi = bounds(start, end, zone)
        calls = Activity.objects.filter(type="call", occurred_at__gte=lo, occurred_at__lt=hi)
        return attributed_daily(
            calls,
            day_field="occurred_at",
            zone=zone,
            rep="rep_id",
            team=team_on("rep_id", "occurred_at", zone),
            source="lead__source",
            value=Count("id"),
        )

    return register_measure(
        Measure(
            key="bench_calls",
            description="Calls, counted again as a registered measure (bench).",
            dirty_kinds=int(DirtyKind.ACTIVITIES),
            daily=daily,
        )
    )


def _tenant() -> Any:
    from kpis.definitions import kpi_custom_create
    from kpis.models import KpiCustomDefinition, KpiMeasureValue
    from kpis.snapshots import kpi_snapshots_rebuild
    from pipeline.demo import seed_demo
    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None or not _seeded(tenant, Lead):
        began = time.perf_counter()
        tenant = seed_demo(
            tenant_slug=SLUG, leads=LEADS, months=MONTHS, seed=11, today=TODAY
        ).tenant
        print(f"  seeded in {time.perf_counter() - began:.1f} s")
    with tenant_context(tenant):
        if not KpiMeasureValue.objects.filter(measure="bench_calls").exists():
            kpi_snapshots_rebuild(tenant=tenant)
        # Both KPIs are the tenant's own, so both reads look their definition up alike.
        for key, numerator in (
            ("registered_per_call", "bench_calls"),
            ("connects_per_call", "connects"),
        ):
            if not KpiCustomDefinition.objects.filter(key=key).exists():
                kpi_custom_create(
                    tenant=tenant, key=key, name_ja=key, category="activity", layer="quality",
                    numerator=numerator, denominator="calls", unit="ratio",
                )  # fmt: skip
    return tenant


def _seeded(tenant: Any, lead_model: Any) -> bool:
    from tenants.context import tenant_context

    with tenant_context(tenant):
        return lead_model.objects.filter(source_system="demo-seed").count() == LEADS


def _read(tenant: Any, key: str, period: Any, scopes: list[Any]) -> tuple[float, Any]:
    from kpis.selectors import kpi_definitions, kpi_values
    from tenants.context import tenant_context

    with tenant_context(tenant):
        began = time.perf_counter()
        kpis = list(kpi_definitions(tenant=tenant, keys=[key]).values())
        values = kpi_values(tenant=tenant, kpis=kpis, periods=[period], scopes=scopes)
        return time.perf_counter() - began, values


def main() -> None:
    from bench import snapshots

    snapshots._setup()
    _measure()
    from kpis.periods import Grain, period_containing
    from kpis.scopes import KpiScope
    from tenants.context import tenant_context
    from tenants.models import Membership, Team

    tenant = _tenant()
    period = period_containing(Grain.MONTH, dt.date(2026, 9, 1), tenant.fiscal_year_start_month)
    with tenant_context(tenant):
        scopes = [KpiScope.tenant()]
        scopes += [KpiScope.team(pk) for pk in Team.objects.values_list("pk", flat=True)]
        scopes += [
            KpiScope.rep(pk)
            for pk in Membership.objects.filter(role="rep").values_list("pk", flat=True)
        ]
    floor, ours = [], []
    for _ in range(RUNS):
        floor.append(_read(tenant, "connects_per_call", period, scopes)[0])
        seconds, values = _read(tenant, "registered_per_call", period, scopes)
        ours.append(seconds)
    # The registered count equals the built-in one in every scope (exactness, not speed).
    wrong = [v for v in values.values() if v.denominator and v.numerator != v.denominator]
    assert not wrong, wrong[:3]
    assert any(v.denominator for v in values.values())
    floor_ms = statistics.median(floor) * 1000
    ours_ms = statistics.median(ours) * 1000
    print(f"  {len(scopes)} scopes, one month, median of {RUNS} reads")
    print(
        f"bench measures: ours {ours_ms:.2f} ms, floor {floor_ms:.2f} ms, "
        f"ratio {ours_ms / floor_ms:.2f} (goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
