"""Benchmark: evaluating 200 alert rules (half on every rep) after a refresh, vs the refresh.

A demo-seeded tenant (BENCH_ALERTS_LEADS leads over 6 months, 10,000 by default: the 1M
tenant of bench/snapshots.py takes long to seed) gets 200 rules of every kind. Each run adds
1,000 calls on one day of the current month, refreshes the snapshots as the refresh task
does (timed: the floor), then evaluates the tenant's rules as `alerts.evaluate_tenant`
does (timed: ours), publishing to the in-app inbox. The goal: evaluation adds at most 50 %
to the refresh it follows. PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
import zoneinfo
from decimal import Decimal
from typing import Any

SLUG = "bench-alerts"
LEADS = int(os.environ.get("BENCH_ALERTS_LEADS", "10000"))
MONTHS = 6
TODAY = dt.date(2026, 10, 1)
# Evaluated "now": the last working day of September (the current month of the rules).
NOW = dt.datetime(2026, 9, 30, 10, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
NEW_ACTIVITIES = 1_000
RULES = 200
GOAL = 0.5
SOURCE = "bench-alerts"

# (kind, kpi, threshold, min_sample): cycled over the rules of each half.
_KINDS: tuple[tuple[str, str, int, int | None], ...] = (
    ("below_value", "calls", 300, None),
    ("below_value", "connect_rate", 60, 30),
    ("below_value", "calls_per_rep_day", 34, None),
    ("below_target_percent", "connect_rate", 90, 30),
    ("behind_pace", "meetings_set", 100, None),
    ("drop_vs_previous", "calls", 20, None),
    ("drop_vs_previous", "meetings_set", 30, None),
    ("silence", "", 8, None),
)
_GRAINS = ("month", "week", "quarter")


def _setup() -> None:
    from bench import snapshots

    snapshots._setup()


def _tenant() -> Any:
    """The seeded tenant with snapshots and targets, seeded again only when missing."""
    from kpis.demo import demo_targets_seed
    from kpis.snapshots import kpi_snapshots_rebuild
    from pipeline.demo import seed_demo
    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is not None:
        with tenant_context(tenant):
            if Lead.objects.filter(source_system="demo-seed").count() == LEADS:
                return tenant
    began = time.perf_counter()
    result = seed_demo(tenant_slug=SLUG, leads=LEADS, months=MONTHS, seed=7, today=TODAY)
    with tenant_context(result.tenant):
        kpi_snapshots_rebuild(tenant=result.tenant, side_connection=True)
    demo_targets_seed(tenant=result.tenant, today=NOW.date())
    print(f"  seeded {result.counts} in {time.perf_counter() - began:.1f} s")
    return result.tenant


def _rules(tenant: Any) -> None:
    """200 rules: 100 on every rep, 100 on the tenant, every team or a source."""
    from alerts import services
    from alerts.models import AlertRule
    from tenants.context import tenant_context

    scopes = ("tenant", "every_team", "source")
    with tenant_context(tenant):
        AlertRule.objects.all().delete()
        for i in range(RULES):
            kind, kpi, threshold, min_sample = _KINDS[i % len(_KINDS)]
            every_rep = i < RULES // 2
            scope = "every_rep" if every_rep else scopes[i % len(scopes)]
            grain = "month" if kind == "silence" else _GRAINS[(i // len(_KINDS)) % len(_GRAINS)]
            if kind == "behind_pace":
                grain = "month"
            services.alert_rule_create(
                tenant=tenant,
                name=f"bench {i:03d}",
                kind=kind,
                kpi_key=kpi,
                threshold=Decimal(threshold),
                min_sample=None if min_sample is None else Decimal(min_sample),
                scope_type=scope,
                scope_key="web" if scope == "source" else "",
                grain=grain,
                improvement_action="Review the call list and the talk script.",
                recipient_roles=["manager"],
                notify_scope_owner=every_rep,
                channels=["in_app"],
            )


def _add_and_refresh(tenant: Any, run: int) -> float:
    """Seconds to refresh after NEW_ACTIVITIES calls on one day of September."""
    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.dirty import mark_activities_added
    from pipeline.models import Activity, Lead
    from tenants.context import tenant_context
    from tenants.models import Membership

    day = dt.datetime(2026, 9, 15, 2, 0, tzinfo=dt.UTC) + dt.timedelta(days=run)
    with tenant_context(tenant):
        leads = list(Lead.objects.order_by("pk").values_list("pk", flat=True)[:NEW_ACTIVITIES])
        reps = list(Membership.objects.filter(role="rep").values_list("pk", flat=True))
        added = Activity.objects.bulk_create(
            Activity(
                tenant=tenant,
                lead_id=leads[i % len(leads)],
                rep_id=reps[i % len(reps)],
                type="call",
                call_outcome="connected" if i % 4 == 0 else "no_answer",
                occurred_at=day + dt.timedelta(seconds=i),
                source_system=SOURCE,
            )
            for i in range(NEW_ACTIVITIES)
        )
        mark_activities_added(
            tenant=tenant, added=[(a.pk, a.occurred_at) for a in added], notify=False
        )
    began = time.perf_counter()
    with tenant_context(tenant):
        result = kpi_snapshots_refresh_dirty(tenant=tenant)
    elapsed = time.perf_counter() - began
    assert result.days == 1, result
    return elapsed


def _evaluate(tenant: Any, run: int) -> tuple[float, Any]:
    """Seconds to evaluate the tenant's rules (the task's work), its commit included."""
    from alerts.evaluation import alerts_evaluate
    from tenants.context import tenant_context

    began = time.perf_counter()
    with tenant_context(tenant):
        result = alerts_evaluate(tenant=tenant, now=NOW + dt.timedelta(minutes=run))
    return time.perf_counter() - began, result


def _cleanup(tenant: Any) -> None:
    from alerts.models import Alert
    from notifications.models import Event
    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        Activity.objects.filter(source_system=SOURCE).delete()
        Alert.objects.all().delete()
        Event.objects.all().delete()


def main() -> None:
    _setup()
    import alerts.scheduling
    from alerts.models import Alert
    from notifications.models import Notification
    from tenants.context import tenant_context
    from tenants.models import Membership

    # NOTE: the refresh tells alerts on commit, which (no broker: eager) would evaluate
    # inside the timed refresh; here the evaluation is run and timed on its own instead.
    alerts.scheduling.alerts_evaluation_schedule = lambda tenant_id: False
    tenant = _tenant()
    _cleanup(tenant)
    _rules(tenant)
    with tenant_context(tenant):
        reps = Membership.objects.filter(role="rep", is_active=True).count()
    import alerts.evaluation

    publishing: list[float] = []
    publish = alerts.evaluation.alerts_publish

    def timed_publish(**kwargs: Any) -> int:
        began = time.perf_counter()
        try:
            return publish(**kwargs)
        finally:
            publishing.append(time.perf_counter() - began)

    alerts.evaluation.alerts_publish = timed_publish
    first, result = _evaluate(tenant, 0)  # the first evaluation fires and publishes (untimed)
    with tenant_context(tenant):
        firing = Alert.objects.filter(state="firing").count()
        inbox = Notification.objects.count()
    print(
        f"  {RULES} rules, {reps} reps: {result.judged:,} judgements, {firing} alerts firing, "
        f"{result.published} events and {inbox:,} inbox rows published by the first "
        f"evaluation ({first * 1000:.0f} ms, of which publishing {publishing[0] * 1000:.0f} ms)"
    )
    refreshes, evaluations = [], []
    for run in range(1, 4):
        refreshes.append(_add_and_refresh(tenant, run))
        elapsed, _ = _evaluate(tenant, run)
        evaluations.append(elapsed)
    print(
        f"  publishing in the timed runs (nothing due): {max(publishing[1:]) * 1000:.1f} ms at most"
    )
    floor = statistics.median(refreshes)
    ours = statistics.median(evaluations)
    print(
        f"bench alerts: ours {ours * 1000:.0f} ms, floor {floor * 1000:.0f} ms (the refresh), "
        f"ratio {ours / floor:.2f} (goal <= {GOAL})"
    )
    _cleanup(tenant)


if __name__ == "__main__":
    main()
