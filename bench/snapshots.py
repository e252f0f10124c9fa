"""Benchmark: KPI snapshot full rebuild and incremental refresh vs one hand-written aggregate.

The tenant has about 1,000,000 activities and 100,000 leads over 6 months (seed_demo). The
floor is one hand-written SQL aggregate over the same activity rows (per tenant-local day and
rep, the activity counts a day snapshot needs), run through the same connection and
row-level security. PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any

SLUG = "bench-kpi"
LEADS = int(os.environ.get("BENCH_KPI_LEADS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_KPI_ACTIVITIES", "1000000"))
MONTHS = 6
TODAY = dt.date(2026, 10, 1)
NEW_ACTIVITIES = 1_000
FULL_GOAL = 2.0
INCREMENTAL_GOAL = 0.01

FLOOR_SQL = """
SELECT (a.occurred_at AT TIME ZONE %s)::date AS day, a.rep_id,
       count(*) FILTER (WHERE a.type = 'call') AS calls,
       count(*) FILTER (WHERE a.type = 'call' AND a.call_outcome = 'connected') AS connects,
       count(*) FILTER (WHERE a.type IN ('call', 'email')) AS outreach,
       count(*) FILTER (WHERE a.type = 'email') AS emails,
       count(*) FILTER (WHERE a.type = 'email' AND a.email_delivered) AS delivered,
       count(*) FILTER (WHERE a.type = 'email' AND a.email_opened) AS opened,
       count(*) FILTER (WHERE a.type = 'email' AND a.email_clicked) AS clicked
FROM pipeline_activity a
WHERE a.tenant_id = %s
GROUP BY 1, 2
"""

# For scale, not a goal: the distinct (lead, local day) outreach pairs alone, one hash
# aggregate with the rebuild's memory. Any exact count of the day grain's leads touched needs
# at least this set; the rebuild also needs the per-rep and per-team firsts of five grains.
TOUCH_SET_SQL = """
SELECT count(*) FROM (
    SELECT DISTINCT a.lead_id, (a.occurred_at AT TIME ZONE %s)::date
    FROM pipeline_activity a
    WHERE a.tenant_id = %s AND a.type IN ('call', 'email')
) x
"""


def _setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if not settings.IS_POSTGRES:
        raise SystemExit("bench snapshots needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("ensure_database")
    call_command("migrate", verbosity=0, interactive=False)


def _tenant() -> Any:
    """The seeded bench tenant, seeded again only when missing or of another size."""
    from pipeline.demo import seed_demo
    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is not None:
        with tenant_context(tenant):
            if Lead.objects.filter(source_system="demo-seed").count() == LEADS:
                _top_up(tenant)
                return tenant
    began = time.perf_counter()
    result = seed_demo(tenant_slug=SLUG, leads=LEADS, months=MONTHS, seed=5, today=TODAY)
    print(f"  seeded {result.counts} in {time.perf_counter() - began:.1f} s")
    _top_up(result.tenant)
    return result.tenant


def _top_up(tenant: Any) -> None:
    """Add activities up to ACTIVITIES: copies of seeded ones, two hours later the same day.

    The generator's reference rates give about 4.5 activities per lead; the benchmark's tenant
    has 10, so the same leads and reps are worked harder (the rates drift, the shape holds).
    """
    from django.db import connections

    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        missing = ACTIVITIES - Activity.objects.count()
    if missing <= 0:
        return
    began = time.perf_counter()
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO pipeline_activity (source_system, external_id, type, occurred_at,
                call_outcome, email_delivered, email_opened, email_clicked, duration_seconds,
                received_at, rep_id, tenant_id, lead_id)
            SELECT 'bench-top-up', 'T' || n || '-' || a.id, a.type,
                   a.occurred_at + interval '2 hours' * ((n %% 3) - 1) + interval '1 second' * n,
                   a.call_outcome, a.email_delivered, a.email_opened, a.email_clicked,
                   a.duration_seconds, now(), a.rep_id, a.tenant_id, a.lead_id
            FROM (SELECT *, row_number() OVER (ORDER BY id) AS r FROM pipeline_activity
                  WHERE tenant_id = %s AND source_system = 'demo-seed') a
            CROSS JOIN generate_series(1, 3) AS n
            WHERE (a.r - 1) * 3 + n <= %s
            """,
            [tenant.pk, missing],
        )
    print(f"  topped up {missing:,} activities in {time.perf_counter() - began:.1f} s")


def _analyze() -> None:
    """Fresh planner statistics and visibility maps after a bulk load, as autovacuum would
    give them later (a no-op when nothing changed since the last run). The snapshot and
    membership tables too: every earlier run's rebuilds left all their rows dead, and
    autovacuum is off on the bench machines, so each run would start slower than the last."""
    from django.db import connections

    tables = (
        "pipeline_activity", "pipeline_lead", "pipeline_stagetransition", "pipeline_dirtyday",
        "kpis_kpisnapshot", "kpis_kpimember", "kpis_kpimemberperiod",
    )  # fmt: skip
    with connections["owner"].cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def _floor(tenant: Any) -> float:
    from django.db import connection

    from tenants.context import tenant_context

    with tenant_context(tenant), connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(FLOOR_SQL, [tenant.timezone, tenant.pk])
        cursor.fetchall()
        return time.perf_counter() - began


def _touch_set(tenant: Any) -> float:
    from django.db import connection, transaction

    from tenants.context import tenant_context

    with tenant_context(tenant), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        began = time.perf_counter()
        cursor.execute(TOUCH_SET_SQL, [tenant.timezone, tenant.pk])
        cursor.fetchall()
        return time.perf_counter() - began


def _rebuild(tenant: Any) -> float:
    """Seconds to rebuild the tenant as the task does, its commit included."""
    from kpis.snapshots import kpi_snapshots_rebuild
    from tenants.context import tenant_context

    began = time.perf_counter()
    with tenant_context(tenant):
        kpi_snapshots_rebuild(tenant=tenant, side_connection=True)
    return time.perf_counter() - began


def _warm(tenant: Any) -> float:
    """What the rebuild task does next: prepare the open periods; its seconds."""
    from kpis.snapshots import kpi_snapshots_warm
    from tenants.context import tenant_context

    began = time.perf_counter()
    with tenant_context(tenant):
        kpi_snapshots_warm(tenant=tenant)
    return time.perf_counter() - began


def _incremental(tenant: Any, run: int) -> float:
    """Seconds to refresh after NEW_ACTIVITIES calls on one day (written like ingestion does)."""
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
                source_system="bench-incremental",
            )
            for i in range(NEW_ACTIVITIES)
        )
        # NOTE: marked as ingestion marks new rows, without the on-commit listener, which
        # would run the refresh eagerly (no broker here) before it is timed.
        mark_activities_added(
            tenant=tenant, added=[(a.pk, a.occurred_at) for a in added], notify=False
        )
    began = time.perf_counter()
    with tenant_context(tenant):
        result = kpi_snapshots_refresh_dirty(tenant=tenant)
    elapsed = time.perf_counter() - began  # its commit included, as for the rebuild
    assert result.days == 1, result
    return elapsed


def _cleanup(tenant: Any) -> None:
    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        Activity.objects.filter(source_system="bench-incremental").delete()


def main() -> None:
    _setup()
    from kpis.models import KpiSnapshot
    from pipeline.models import Activity
    from tenants.context import tenant_context

    tenant = _tenant()
    _cleanup(tenant)
    _analyze()
    with tenant_context(tenant):
        activities = Activity.objects.count()
    floors = [_floor(tenant) for _ in range(3)]
    rebuilds = [_rebuild(tenant) for _ in range(2)]
    floor = statistics.median(floors)
    full = min(rebuilds)
    with tenant_context(tenant):
        rows = KpiSnapshot.objects.count()
    print(f"  {activities:,} activities; the rebuild wrote {rows:,} snapshot rows")
    touch_set = statistics.median(_touch_set(tenant) for _ in range(3))
    print(
        f"  for scale: the distinct (lead, day) outreach pairs alone take {touch_set * 1000:.0f} ms"
        f" ({touch_set / floor:.2f}x the floor)"
    )
    print(
        f"bench snapshots_full: ours {full * 1000:.0f} ms, floor {floor * 1000:.0f} ms, "
        f"ratio {full / floor:.2f} (goal <= {FULL_GOAL})"
    )
    warm = _warm(tenant)
    print(f"  warm-up of the open periods after the rebuild: {warm:.1f} s")
    runs = [_incremental(tenant, run) for run in range(3)]
    incremental = statistics.median(runs)
    print("  incremental runs: " + ", ".join(f"{seconds * 1000:.1f} ms" for seconds in runs))
    _cleanup(tenant)
    _rebuild(tenant)
    print(
        f"bench snapshots_incremental: ours {incremental * 1000:.1f} ms, "
        f"floor {full * 1000:.0f} ms (full rebuild), ratio {incremental / full:.4f} "
        f"(goal < {INCREMENTAL_GOAL})"
    )


if __name__ == "__main__":
    main()
