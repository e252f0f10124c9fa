"""PostgreSQL membership rows that keep coarse distinct counts exact and incremental."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from typing import Any

from django.db import connection

from kpis.aggregates import Rows
from kpis.models import KpiMember, KpiMemberPeriod
from kpis.periods import Period

_INSERT = """
WITH inserted AS (
    INSERT INTO kpis_kpimember
        (tenant_id, grain, period_start, scope_type, scope_key, kind, member)
    SELECT DISTINCT %(tenant)s, %(grain)s, %(period_start)s, s.scope_type, s.scope_key,
           k.kind, k.member
    FROM pipeline_activity a
    JOIN pipeline_lead l ON l.id = a.lead_id
    LEFT JOIN tenants_membership m ON m.id = a.rep_id
    CROSS JOIN LATERAL (VALUES
        ('tenant', ''), ('team', m.team_id::text), ('rep', a.rep_id::text),
        ('source', coalesce(l.source, ''))
    ) AS s(scope_type, scope_key)
    CROSS JOIN LATERAL (VALUES
        ('l', CASE WHEN a.type IN ('call', 'email') THEN a.lead_id END), ('r', a.rep_id)
    ) AS k(kind, member)
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
      AND s.scope_key IS NOT NULL AND k.member IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING scope_type, scope_key, kind
)
SELECT scope_type, scope_key, kind, count(*) FROM inserted GROUP BY 1, 2, 3
"""

_MEASURE = {KpiMember.Kind.LEAD: "leads_touched", KpiMember.Kind.REP: "active_reps"}


def _insert(
    tenant_id: int, period: Period, lo: datetime, hi: datetime
) -> dict[tuple[str, str], dict[str, int]]:
    """Insert the members active in [lo, hi) into `period`; counts of those newly inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "tenant": tenant_id,
                "grain": period.grain,
                "period_start": period.start,
                "lo": lo,
                "hi": hi,
            },
        )
        added: dict[tuple[str, str], dict[str, int]] = {}
        for scope_type, scope_key, kind, count in cursor.fetchall():
            added.setdefault((scope_type, scope_key), {})[_MEASURE[kind]] = count
        return added


def distinct_counts(
    *,
    tenant_id: int,
    period: Period,
    dirty: list[tuple[date, date]],
    zone: zoneinfo.ZoneInfo,
) -> Rows:
    """Exact distinct counts of `period` after its `dirty` day ranges changed.

    A period seen before gets the members of its dirty days added to its stored counts
    (cost proportional to those days); a period seen for the first time has its members
    built from all of its raw rows once.
    """
    lo, hi = period.bounds(zone)
    out: Rows = {}
    marked = KpiMemberPeriod.objects.filter(grain=period.grain, period_start=period.start)
    if not marked.exists():
        KpiMember.objects.filter(grain=period.grain, period_start=period.start).delete()
        for (scope_type, scope_key), counts in _insert(tenant_id, period, lo, hi).items():
            out[(period.start, scope_type, scope_key)] = dict(counts)
        KpiMemberPeriod.objects.create(
            tenant_id=tenant_id, grain=period.grain, period_start=period.start
        )
        return out
    from kpis.models import KpiSnapshot

    for row in KpiSnapshot.objects.filter(grain=period.grain, period_start=period.start).values(
        "scope_type", "scope_key", "leads_touched", "active_reps"
    ):
        out[(period.start, row["scope_type"], row["scope_key"])] = {
            "leads_touched": row["leads_touched"],
            "active_reps": row["active_reps"],
        }
    for start, end in dirty:
        start, end = max(start, period.start), min(end, period.end)
        if start >= end:
            continue
        day_lo = datetime.combine(start, datetime.min.time(), tzinfo=zone)
        day_hi = datetime.combine(end, datetime.min.time(), tzinfo=zone)
        for (scope_type, scope_key), counts in _insert(tenant_id, period, day_lo, day_hi).items():
            bucket = out.setdefault((period.start, scope_type, scope_key), {})
            for name, value in counts.items():
                bucket[name] = bucket.get(name, 0) + value
    return out


def forget(*, periods: list[Any] | None = None) -> None:
    """Drop membership rows (all of the tenant's, or those of `periods`)."""
    if periods is None:
        KpiMember.objects.all().delete()
        KpiMemberPeriod.objects.all().delete()
        return
    for period in periods:
        KpiMember.objects.filter(grain=period.grain, period_start=period.start).delete()
        KpiMemberPeriod.objects.filter(grain=period.grain, period_start=period.start).delete()
