"""Reading the day measures of a pass from raw rows: the activities' (counts and distinct
counts) and the other sources' (leads, transitions, deals, the weighted pipeline), the
portable ORM on other databases and the SQL of `daily_sql` on PostgreSQL.

Separate from the passes so that a rebuild's side connection and its main one read the
same way, and a test can swap one reader for every caller.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kpis import aggregates
from kpis.periods import Grain, Period
from kpis.snapshots import daily_sql
from kpis.snapshots.common import is_postgres
from tenants.models import Tenant


def other_measures(tenant_id: int, start: date, end: date, zone) -> aggregates.Rows:
    """Day measures of [start, end) from leads, transitions and deals (PostgreSQL)."""
    out: aggregates.Rows = {}
    daily_sql.other_measures(out, tenant_id=tenant_id, start=start, end=end, zone=zone)
    daily_sql.weighted_pipeline_changes(out, tenant_id=tenant_id, start=start, end=end, zone=zone)
    return out


def bulk_other_measures(tenant_id: int, start: date, end: date, zone) -> aggregates.Rows:
    with daily_sql.bulk_settings():
        return other_measures(tenant_id, start, end, zone)


def daily_measures(
    tenant: Tenant,
    start: date,
    end: date,
    zone,
    activities: aggregates.Rows | None = None,
    others: aggregates.Rows | None = None,
) -> aggregates.Rows:
    """Day measures of [start, end); `activities` holds the days' activity measures (counts
    and distinct counts) and `others` those of `other_measures`, when the caller computed
    them."""
    if not is_postgres():
        return aggregates.daily_measures(start=start, end=end, zone=zone)
    out: aggregates.Rows = {}
    if activities is None:
        daily_sql.activity_measures(out, tenant_id=tenant.pk, start=start, end=end, zone=zone)
    else:
        for key, values in activities.items():
            if start <= key[0] < end:
                out[key] = dict(values)
    if others is None:
        others = other_measures(tenant.pk, start, end, zone)
    # Each measure comes from one source, so the two sets of values never overlap.
    for key, values in others.items():
        if start <= key[0] < end:
            out.setdefault(key, {}).update(values)
    return out


def rebuild_activity_measures(tenant: Tenant, periods: list[Period], zone) -> dict[Any, Any]:
    """Activity measures of the days (key Grain.DAY) and distinct counts of every coarse
    period (key: Period), from one pass over the activities."""
    by_grain: dict[str, aggregates.Rows] = {}
    daily_sql.activity_measures_by_grain(
        by_grain,
        tenant_id=tenant.pk,
        start=min(p.start for p in periods),
        end=max(p.end for p in periods),
        fiscal_start=tenant.fiscal_year_start_month,
        zone=zone,
    )
    result: dict[Any, Any] = {period: {} for period in periods}
    result[Grain.DAY] = by_grain.get(Grain.DAY, {})
    starts = {(p.grain, p.start): p for p in periods}
    for grain, rows in by_grain.items():
        if grain == Grain.DAY:
            continue
        for key, values in rows.items():
            result[starts[(grain, key[0])]][key] = values
    return result
