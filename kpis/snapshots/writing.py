"""Writing snapshot rows: the day rows and the coarse periods' rows of a pass, inserted in
bulk (one INSERT ... SELECT FROM unnest on PostgreSQL), and the new day rows of changed
days from their stored rows and what changed on them.

Separate from the passes (`refresh`, `rebuild`) because both write rows the same way; the
map of which stored columns each kind of change moves lives here, checked at import
against what the SQL computes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, Sum

from kpis import aggregates
from kpis.measures import kind_columns
from kpis.models import KpiSnapshot
from kpis.periods import Grain, Period
from kpis.snapshots import daily_sql, literals_sql, measuring, rollup_sql
from kpis.snapshots.common import DayChange, day_ranges, is_postgres
from kpis.snapshots.rollup_sql import DISTINCT_COLUMNS, SUMMED_COLUMNS
from pipeline.models import DirtyKind
from tenants.models import Tenant

BULK_BATCH = 2000


Entry = tuple[str, date, date, str, str, dict[str, Any]]
"""A snapshot row to insert: grain, period start and end, scope type and key, measures."""


def _unnest(entries: list[Entry]) -> tuple[str, dict[str, Any]]:
    """A SELECT of `entries` from one array per column, and its parameters.

    NOTE: one array per column keeps the statement and its parameters small; Django's
    bulk_create would send 30 parameters per row (and COPY is refused under row security).
    """
    types = {field.column: field.db_type(connection) for field in KpiSnapshot._meta.concrete_fields}
    params: dict[str, Any] = {
        f"e_{name}": literals_sql.texts(entry[index] for entry in entries)
        for index, name in enumerate(rollup_sql.KEY_COLUMNS)
    }
    params |= {
        f"e_{name}": literals_sql.numbers(entry[5].get(name, 0) for entry in entries)
        for name in rollup_sql.MEASURE_COLUMNS
    }
    columns = (*rollup_sql.KEY_COLUMNS, *rollup_sql.MEASURE_COLUMNS)
    arrays = ", ".join(f"%(e_{name})s::{types[name]}[]" for name in columns)
    return f"SELECT * FROM unnest({arrays}) AS e({', '.join(columns)})", params


def insert(tenant: Tenant, entries: list[Entry], at, table: str = rollup_sql.SNAPSHOTS) -> int:
    """Insert snapshot rows (into `table`, PostgreSQL: the snapshots or the rebuild's stage):
    one INSERT ... SELECT FROM unnest(arrays) on PostgreSQL."""
    if not entries:
        return 0
    if not is_postgres():
        KpiSnapshot.objects.bulk_create(
            [
                KpiSnapshot(
                    tenant=tenant,
                    grain=grain,
                    period_start=start,
                    period_end=end,
                    scope_type=scope_type,
                    scope_key=scope_key,
                    computed_at=at,
                    **values,
                )
                for grain, start, end, scope_type, scope_key, values in entries
            ],
            batch_size=BULK_BATCH,
        )
        return len(entries)
    rows, params = _unnest(entries)
    columns = ", ".join((*rollup_sql.KEY_COLUMNS, *rollup_sql.MEASURE_COLUMNS))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{rollup_sql.INSERT_INTO.format(table=table, columns=columns)} "
            f"SELECT %(tenant)s, %(at)s, e.* FROM ({rows}) e",
            params | {"tenant": tenant.pk, "at": at},
        )
    return len(entries)


# The stored columns each kind of change can move, from the measures' declarations; every
# built-in measure has one kind.
KIND_MEASURES: dict[DirtyKind, tuple[str, ...]] = kind_columns()
# The SQL computes each kind's columns together: a declaration must match what it computes.
assert set(KIND_MEASURES[DirtyKind.ACTIVITIES]) == {
    *daily_sql.ACTIVITY_COUNTS,
    *DISTINCT_COLUMNS,
}
assert set(KIND_MEASURES[DirtyKind.TRANSITIONS]) == set(daily_sql.TRANSITION_COUNTS)
assert set(rollup_sql.MEASURE_COLUMNS) == {
    name for names in KIND_MEASURES.values() for name in names
}
_KIND_AGGREGATES = {
    DirtyKind.LEADS: (daily_sql.lead_measures,),
    DirtyKind.TRANSITIONS: (daily_sql.transition_measures,),
    DirtyKind.DEALS: (daily_sql.deal_measures, daily_sql.weighted_pipeline_changes),
}


def _stored_day_rows(tenant: Tenant, days: list[date]) -> aggregates.Rows:
    columns = ", ".join(rollup_sql.MEASURE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT period_start, scope_type, scope_key, {columns} FROM kpis_kpisnapshot "
            "WHERE tenant_id = %s AND grain = 'day' AND period_start = ANY(%s::date[])"
            # NOTE: bounds the index range; the planner filters the array over every day row.
            " AND period_start BETWEEN %s AND %s",
            [tenant.pk, days, min(days), max(days)],
        )
        return {
            (day, scope_type, scope_key): {
                name: value
                for name, value in zip(rollup_sql.MEASURE_COLUMNS, values, strict=True)
                if value
            }
            for day, scope_type, scope_key, *values in cursor.fetchall()
        }


def changed_day_entries(
    tenant: Tenant,
    days: list[date],
    changes: dict[date, DayChange],
    zone,
    activities: aggregates.Rows,
    added_days: set[date],
) -> list[Entry]:
    """The day rows of `days` whose values changed (PostgreSQL), with their new values (all
    zero for a row that must go): the measures of each kind that changed on a day are
    recomputed from its raw rows, or moved by the counts of the activities added
    (`added_days`, whose `activities` rows are changes); the others keep their stored values.
    """
    stored = _stored_day_rows(tenant, days)
    rows = {key: dict(values) for key, values in stored.items()}
    for kind, names in KIND_MEASURES.items():
        kind_days = {day for day in days if changes[day].kinds & kind}
        if not kind_days:
            continue
        if kind == DirtyKind.ACTIVITIES:
            fresh, replaced = activities, kind_days - added_days
        else:
            fresh, replaced = {}, kind_days
            for start, end in day_ranges(kind_days):
                for measures in _KIND_AGGREGATES[kind]:
                    measures(fresh, tenant_id=tenant.pk, start=start, end=end, zone=zone)
        for (day, *_), values in rows.items():
            if day in replaced:
                for name in names:
                    values.pop(name, None)
        for key, values in fresh.items():
            if key[0] not in kind_days:
                continue
            bucket = rows.setdefault(key, {})
            for name in names:
                if values.get(name):
                    bucket[name] = bucket.get(name, 0) + values[name]
    entries: list[Entry] = []
    for (day, scope_type, scope_key), values in rows.items():
        values = {name: value for name, value in values.items() if value}
        if values != stored.get((day, scope_type, scope_key), {}):
            entries.append((Grain.DAY, day, day + timedelta(days=1), scope_type, scope_key, values))
    return entries


def day_entries(
    tenant: Tenant,
    ranges: list[tuple[date, date]],
    zone,
    activities: aggregates.Rows | None = None,
    others: aggregates.Rows | None = None,
) -> list[Entry]:
    """The day rows of the dates in `ranges`."""
    entries: list[Entry] = []
    for start, end in ranges:
        for key, values in measuring.daily_measures(
            tenant, start, end, zone, activities, others
        ).items():
            if any(values.values()):
                day, scope_type, scope_key = key
                entries.append(
                    (Grain.DAY, day, day + timedelta(days=1), scope_type, scope_key, values)
                )
    return entries


def write_days(
    tenant: Tenant,
    ranges: list[tuple[date, date]],
    zone,
    at,
    activities: aggregates.Rows | None = None,
) -> int:
    entries = day_entries(tenant, ranges, zone, activities)
    day_filter = Q()
    for start, end in ranges:
        day_filter |= Q(period_start__gte=start, period_start__lt=end)
    KpiSnapshot.objects.filter(day_filter, grain=Grain.DAY).delete()
    return insert(tenant, entries, at)


def _write_period(
    tenant: Tenant, period: Period, zone, at, distinct: aggregates.Rows | None = None
) -> int:
    """Roll a coarse period up from its day rows, plus its distinct counts (portable path).

    `distinct` holds the period's distinct counts when the caller computed them; otherwise
    they are counted from the period's raw rows.
    """
    sums = (
        KpiSnapshot.objects.filter(
            grain=Grain.DAY, period_start__gte=period.start, period_start__lt=period.end
        )
        .values("scope_type", "scope_key")
        .annotate(**{name: Sum(name) for name in SUMMED_COLUMNS})
        .order_by()
    )
    measures: aggregates.Rows = {}
    for row in sums:
        key = (period.start, row.pop("scope_type"), row.pop("scope_key"))
        measures[key] = {name: value for name, value in row.items() if value}
    if distinct is None:
        aggregates.distinct_activity_measures(
            measures, start=period.start, end=period.end, period_start=period.start, zone=zone
        )
    else:
        for key, values in distinct.items():
            measures.setdefault(key, {}).update(values)
    entries: list[Entry] = [
        (period.grain, period.start, period.end, scope_type, scope_key, values)
        for (_, scope_type, scope_key), values in measures.items()
        if any(values.values())
    ]
    KpiSnapshot.objects.filter(grain=period.grain, period_start=period.start).delete()
    return insert(tenant, entries, at)


def write_periods(
    tenant: Tenant,
    periods: list[Period],
    zone,
    at,
    distinct: dict[Period, aggregates.Rows],
    *,
    days: tuple[list[date], list[Entry]] | None = None,
    staged: bool = False,
) -> int:
    """Roll every coarse period up from its day rows, plus the periods' distinct counts.

    `distinct` holds each period's distinct counts (on PostgreSQL, of every period; on other
    databases a period missing from it has them counted from its raw rows).

    On PostgreSQL one statement writes all periods. Without `days` (a rebuild, which
    deleted every row already) they are summed from their stored day rows; with `days`
    (the refreshed days and their day rows that changed, `distinct` holding only the
    counts that changed) the statement also replaces those days' rows and moves the
    periods' stored rows by the change. `staged` (a rebuild): from the day rows of the
    rebuild's stage, into it. Returns the rows written.
    """
    if not is_postgres():
        return sum(
            _write_period(tenant, period, zone, at, distinct.get(period)) for period in periods
        )
    d_rows = [
        (period.grain, period.start, scope_type, scope_key, values)
        for period in periods
        for (_, scope_type, scope_key), values in distinct[period].items()
    ]
    params = {
        "tenant": tenant.pk,
        "at": at,
        "grains": [p.grain for p in periods],
        "starts": [p.start for p in periods],
        "ends": [p.end for p in periods],
        "d_grains": literals_sql.texts(row[0] for row in d_rows),
        "d_starts": literals_sql.texts(row[1] for row in d_rows),
        "d_types": literals_sql.texts(row[2] for row in d_rows),
        "d_keys": literals_sql.texts(row[3] for row in d_rows),
        "d_leads": literals_sql.numbers(row[4].get("leads_touched", 0) for row in d_rows),
        "d_reps": literals_sql.numbers(row[4].get("active_reps", 0) for row in d_rows),
    }
    if days is None:
        with connection.cursor() as cursor:
            cursor.execute(
                rollup_sql.STAGED_ROLLUP if staged else rollup_sql.REBUILD_ROLLUP, params
            )
            return cursor.rowcount
    day_list, entries = days
    rows, day_params = _unnest(entries)
    params |= day_params | {
        "days": day_list,
        "first_day": min(day_list),
        "last_day": max(day_list),
    }
    with connection.cursor() as cursor:
        cursor.execute(rollup_sql.refresh_sync(rows), params)
        return cursor.fetchone()[0]
