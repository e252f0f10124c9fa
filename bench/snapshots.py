"""Benchmark: KPI snapshot full rebuild and incremental refresh.

`snapshots_full`: the rebuild of a tenant with about 1,000,000 activities and 100,000 leads
over 6 months (seed_demo, topped up) against the hand-written statement that gives the same
activity outputs in one query (EQUIVALENT_SQL: GROUPING SETS over the 5 grains x 4 scopes,
COUNT(DISTINCT) for leads touched and active reps), run through the same connection and
row-level security; the bench checks that both give equal numbers for every row. The plain
daily x rep scan (FLOOR_SQL, the activity counts a day snapshot needs) is shown for scale.

`snapshots_incremental`: the refresh after 1,000 new calls on one day (1,000 leads, 8 reps:
the same batch on both tenants), on the 1,000,000-activity tenant against the same on a
100,000-activity one (10,000 leads), in turns: flat in tenant size means a ratio near 1.
Each refresh is timed to its commit; the alert evaluation it queues is timed apart (a task
of its own with a broker; this benchmark has none, so Celery would run it inline).

Sizes (both tenants are seeded once and reused by later runs, and by the kpi_tree,
freshness and mixed-load benchmarks): BENCH_KPI_LEADS / BENCH_KPI_ACTIVITIES for the large
tenant, BENCH_KPI_SMALL_LEADS / BENCH_KPI_SMALL_ACTIVITIES for the small one.
PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any
from unittest import mock

SLUG = "bench-kpi"
LEADS = int(os.environ.get("BENCH_KPI_LEADS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_KPI_ACTIVITIES", "1000000"))
SMALL_SLUG = "bench-kpi-small"
SMALL_LEADS = int(os.environ.get("BENCH_KPI_SMALL_LEADS", "10000"))
SMALL_ACTIVITIES = int(os.environ.get("BENCH_KPI_SMALL_ACTIVITIES", "100000"))
MONTHS = 6
TODAY = dt.date(2026, 10, 1)
NEW_ACTIVITIES = 1_000
BATCH_REPS = 8  # the batch's reps: the same batch shape on both tenants (the small has 8)
INCREMENTAL_RUNS = 5
# Seconds each queued alert evaluation took after an incremental refresh (run apart).
EVALUATIONS: list[float] = []
FULL_GOAL = 0.5  # of the equivalent statement
FLAT_GOAL = 1.25  # large tenant's refresh over the small one's
INCREMENTAL_GOAL_MS = 50.0  # at 1,000,000 activities

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

# The activity outputs of a rebuild written as one plain statement: every grain's periods
# and every scope in GROUPING SETS, the distinct counts with COUNT(DISTINCT). Grain and
# scope are read back from GROUPING(); rows without a team (rep) are not a team (rep) row.
_GRAINS = ("d", "w", "mo", "q", "y")
_SCOPES = {"tenant": (), "team": ("team",), "rep": ("rep",), "source": ("src",)}
_SETS_SQL = ", ".join(
    "(" + ", ".join((grain, *columns)) + ")" for grain in _GRAINS for columns in _SCOPES.values()
)
EQUIVALENT_SQL = f"""
WITH x AS (
    SELECT (a.occurred_at AT TIME ZONE %(tz)s) AS lt, a.type, a.call_outcome,
           a.email_delivered, a.email_opened, a.email_clicked, a.lead_id, a.rep_id AS rep,
           m.team_id AS team, coalesce(l.source, '') AS src
    FROM pipeline_activity a
    JOIN pipeline_lead l ON l.id = a.lead_id AND l.tenant_id = %(tenant)s
    LEFT JOIN tenants_membership m ON m.id = a.rep_id
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
), p AS (
    SELECT lt::date AS d, date_trunc('week', lt)::date AS w,
           date_trunc('month', lt)::date AS mo,
           (date_trunc('month', lt) - make_interval(months =>
               ((extract(month FROM lt)::int - %(fiscal)s + 12) %% 3)))::date AS q,
           (date_trunc('month', lt) - make_interval(months =>
               ((extract(month FROM lt)::int - %(fiscal)s + 12) %% 12)))::date AS y,
           type, call_outcome, email_delivered, email_opened, email_clicked, lead_id, rep,
           team, src
    FROM x
)
SELECT CASE WHEN GROUPING(d) = 0 THEN 'day' WHEN GROUPING(w) = 0 THEN 'week'
            WHEN GROUPING(mo) = 0 THEN 'month' WHEN GROUPING(q) = 0 THEN 'quarter'
            ELSE 'year' END,
       coalesce(d, w, mo, q, y),
       CASE WHEN GROUPING(team) = 0 THEN 'team' WHEN GROUPING(rep) = 0 THEN 'rep'
            WHEN GROUPING(src) = 0 THEN 'source' ELSE 'tenant' END,
       CASE WHEN GROUPING(team) = 0 THEN team::text WHEN GROUPING(rep) = 0 THEN rep::text
            WHEN GROUPING(src) = 0 THEN src ELSE '' END,
       count(*) FILTER (WHERE type = 'call'),
       count(*) FILTER (WHERE type = 'call' AND call_outcome = 'connected'),
       count(*) FILTER (WHERE type IN ('call', 'email')),
       count(*) FILTER (WHERE type = 'email'),
       count(*) FILTER (WHERE type = 'email' AND email_delivered),
       count(*) FILTER (WHERE type = 'email' AND email_opened),
       count(*) FILTER (WHERE type = 'email' AND email_clicked),
       count(DISTINCT lead_id) FILTER (WHERE type IN ('call', 'email')),
       count(DISTINCT rep)
FROM p
GROUP BY GROUPING SETS ({_SETS_SQL})
"""
EQUIVALENT_COLUMNS = (
    "calls", "connects", "outreach", "emails_sent", "emails_delivered", "emails_opened",
    "emails_clicked", "leads_touched", "active_reps",
)  # fmt: skip


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


def _tenant(
    slug: str = SLUG, leads: int = LEADS, activities: int = ACTIVITIES, seed: int = 5
) -> Any:
    """A seeded bench tenant, seeded again only when missing or of another size."""
    from pipeline.demo import seed_demo
    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        with tenant_context(tenant):
            if Lead.objects.filter(source_system="demo-seed").count() == leads:
                _top_up(tenant, activities)
                return tenant
    began = time.perf_counter()
    result = seed_demo(tenant_slug=slug, leads=leads, months=MONTHS, seed=seed, today=TODAY)
    print(f"  seeded {slug}: {result.counts} in {time.perf_counter() - began:.1f} s")
    _top_up(result.tenant, activities)
    return result.tenant


def _small_tenant() -> Any:
    return _tenant(SMALL_SLUG, SMALL_LEADS, SMALL_ACTIVITIES, seed=6)


def _top_up(tenant: Any, activities: int) -> None:
    """Add activities up to `activities`: copies of seeded ones, two hours later the same day.

    The generator's reference rates give about 4.5 activities per lead; the benchmark's tenants
    have 10, so the same leads and reps are worked harder (the rates drift, the shape holds).
    """
    from django.db import connections

    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        missing = activities - Activity.objects.count()
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


def _equivalent(tenant: Any) -> tuple[float, dict[tuple[Any, ...], tuple[int, ...]]]:
    """Seconds of EQUIVALENT_SQL over the rows a rebuild reads (the tenant's data days),
    under the rebuild's settings, and its rows by (grain, start, scope type, scope key)."""
    import zoneinfo

    from django.db import connection, transaction

    from kpis.aggregates import bounds
    from kpis.snapshots.common import data_day_range
    from kpis.snapshots.daily_sql import bulk_settings
    from tenants.context import statement_timeout_raised, tenant_context

    zone = zoneinfo.ZoneInfo(tenant.timezone)
    with tenant_context(tenant), transaction.atomic():
        statement_timeout_raised()  # as the rebuild does: it outlasts the role's limit
        start, end = data_day_range(tenant=tenant)
        lo, hi = bounds(start, end, zone)
        params = {
            "tz": tenant.timezone,
            "tenant": tenant.pk,
            "lo": lo,
            "hi": hi,
            "fiscal": tenant.fiscal_year_start_month,
        }
        with bulk_settings(), connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute(EQUIVALENT_SQL, params)
            rows = cursor.fetchall()
            elapsed = time.perf_counter() - began
    by_key = {}
    for grain, start_day, scope_type, scope_key, *values in rows:
        if scope_key is None:  # activities of no rep (no team): not a rep (team) row
            continue
        by_key[(grain, start_day, scope_type, scope_key)] = tuple(values)
    return elapsed, by_key


def _assert_equal_outputs(tenant: Any, equivalent: dict[tuple[Any, ...], tuple[int, ...]]) -> int:
    """Every activity measure of every snapshot row equals the equivalent statement's (a
    row missing on one side reads as zeros); returns the rows compared."""
    from kpis.models import KpiSnapshot
    from tenants.context import tenant_context

    with tenant_context(tenant):
        ours = {
            (grain, start_day, scope_type, scope_key): tuple(values)
            for grain, start_day, scope_type, scope_key, *values in KpiSnapshot.objects.values_list(
                "grain", "period_start", "scope_type", "scope_key", *EQUIVALENT_COLUMNS
            )
        }
    zeros = (0,) * len(EQUIVALENT_COLUMNS)
    keys = set(ours) | set(equivalent)
    differing = [key for key in keys if ours.get(key, zeros) != equivalent.get(key, zeros)]
    if differing:
        key = sorted(differing)[0]
        raise AssertionError(
            f"{len(differing)} rows differ from the equivalent statement, e.g. {key}: "
            f"ours {ours.get(key)}, equivalent {equivalent.get(key)}"
        )
    return len(keys)


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
    """Seconds to refresh after NEW_ACTIVITIES calls on one day (written like ingestion does).

    NOTE: the tasks a refresh queues once it commits (an alert evaluation) are run apart
    and timed apart (EVALUATIONS): with a broker they are tasks of their own, on another
    worker; without one (this benchmark's settings) Celery would run them inside the call.
    """
    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.dirty import mark_activities_added
    from pipeline.models import Activity, Lead
    from tenants.context import tenant_context
    from tenants.models import Membership
    from tenants.task_queue import enqueue

    day = dt.datetime(2026, 9, 15, 2, 0, tzinfo=dt.UTC) + dt.timedelta(days=run)
    with tenant_context(tenant):
        leads = list(Lead.objects.order_by("pk").values_list("pk", flat=True)[:NEW_ACTIVITIES])
        reps = list(
            Membership.objects.filter(role="rep").order_by("pk").values_list("pk", flat=True)
        )[:BATCH_REPS]
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
    queued: list[tuple[str, tuple[Any, ...]]] = []
    with mock.patch("alerts.scheduling.enqueue", lambda name, *args: queued.append((name, args))):
        began = time.perf_counter()
        with tenant_context(tenant):
            result = kpi_snapshots_refresh_dirty(tenant=tenant)
        elapsed = time.perf_counter() - began  # its commit included, as for the rebuild
    assert result.days == 1, result
    assert {name for name, _ in queued} <= {"alerts.evaluate_tenant"}, queued
    began = time.perf_counter()
    for name, args in queued:
        enqueue(name, *args)
    EVALUATIONS.append(time.perf_counter() - began)
    return elapsed


def _cleanup(tenant: Any) -> None:
    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        Activity.objects.filter(source_system="bench-incremental").delete()


def _incremental_runs(large: Any, small: Any) -> tuple[list[float], list[float]]:
    """Refreshes after NEW_ACTIVITIES new calls each, on rebuilt and warmed tenants, taken in
    turns (a machine that slows down for a while slows both alike)."""
    for tenant in (large, small):
        _cleanup(tenant)
        _rebuild(tenant)
        _warm(tenant)
    _analyze()  # as autovacuum would after the rebuilds' writes (it is off here)
    runs: tuple[list[float], list[float]] = ([], [])
    for run in range(INCREMENTAL_RUNS):
        runs[0].append(_incremental(large, run))
        runs[1].append(_incremental(small, run))
    for tenant in (large, small):
        _cleanup(tenant)
        _rebuild(tenant)
    return runs


def main() -> None:
    _setup()
    from kpis.models import KpiSnapshot
    from pipeline.models import Activity
    from tenants.context import tenant_context

    tenant = _tenant()
    small = _small_tenant()
    for each in (tenant, small):
        _cleanup(each)
    _analyze()
    with tenant_context(tenant):
        activities = Activity.objects.count()
    with tenant_context(small):
        small_activities = Activity.objects.count()

    # The small tenant first: its rebuild checked against the equivalent statement.
    _rebuild(small)
    _, small_equivalent = _equivalent(small)
    compared = _assert_equal_outputs(small, small_equivalent)
    print(f"  {small_activities:,} activities: {compared:,} rows equal to the equivalent's")

    floor = statistics.median(_floor(tenant) for _ in range(3))
    rebuilds = [_rebuild(tenant) for _ in range(2)]
    full = min(rebuilds)
    with tenant_context(tenant):
        rows = KpiSnapshot.objects.count()
    equivalents = [_equivalent(tenant) for _ in range(2)]
    equivalent = min(seconds for seconds, _ in equivalents)
    compared = _assert_equal_outputs(tenant, equivalents[0][1])
    print(
        f"  {activities:,} activities; the rebuild wrote {rows:,} snapshot rows, "
        f"{compared:,} rows equal to the equivalent's"
    )
    print(
        f"  rebuilds {', '.join(f'{r:.2f}' for r in rebuilds)} s; equivalent statement "
        f"{', '.join(f'{e:.2f}' for e, _ in equivalents)} s; for scale, the plain daily x rep "
        f"scan {floor * 1000:.0f} ms (ours {full / floor:.2f}x the scan)"
    )
    print(
        f"bench snapshots_full: ours {full * 1000:.0f} ms, floor {equivalent * 1000:.0f} ms "
        f"(the equivalent GROUPING SETS statement), ratio {full / equivalent:.2f} "
        f"(goal <= {FULL_GOAL})"
    )

    large_runs, small_runs = _incremental_runs(tenant, small)
    large, small_ms = statistics.median(large_runs), statistics.median(small_runs)
    print(
        f"  incremental runs, {activities:,} activities: "
        + ", ".join(f"{seconds * 1000:.1f}" for seconds in large_runs)
        + f" ms; {small_activities:,} activities: "
        + ", ".join(f"{seconds * 1000:.1f}" for seconds in small_runs)
        + " ms (each to its commit); the alert evaluation each queued, a task of its own: "
        + f"median {statistics.median(EVALUATIONS) * 1000:.1f} ms"
    )
    print(
        f"bench snapshots_incremental: ours {large * 1000:.1f} ms ({activities:,} activities), "
        f"floor {small_ms * 1000:.1f} ms (the same refresh, {small_activities:,} activities), "
        f"ratio {large / small_ms:.2f} (goal <= {FLAT_GOAL} and ours < "
        f"{INCREMENTAL_GOAL_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
