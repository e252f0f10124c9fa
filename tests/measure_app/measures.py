"""Two measures over calls that kpis does not know: talk time and long calls.

`talk_seconds` has a portable daily computation and a PostgreSQL one (raw SQL); both must
give the same values. `long_calls` is portable only. Both are dirtied by activities.
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum

from kpis.aggregates import attributed_daily, bounds, team_on
from kpis.measures import DailyValues, Measure, register_measure, unregister_measure
from kpis.snapshots.daily_sql import team_span_join
from pipeline.models import Activity, DirtyKind

LONG_CALL_SECONDS = 300


def _calls(start: date, end: date, zone: zoneinfo.ZoneInfo):
    lo, hi = bounds(start, end, zone)
    return Activity.objects.filter(type=Activity.Type.CALL, occurred_at__gte=lo, occurred_at__lt=hi)


def _attributed(queryset, zone: zoneinfo.ZoneInfo, value) -> DailyValues:
    return attributed_daily(
        queryset,
        day_field="occurred_at",
        zone=zone,
        rep="rep_id",
        team=team_on("rep_id", "occurred_at", zone),  # the rep's team on the call's day
        source="lead__source",
        value=value,
    )


def talk_seconds_daily(
    *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> DailyValues:
    return _attributed(_calls(start, end, zone), zone, Sum("duration_seconds"))


_TALK_SQL = """
WITH c AS (
    SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date AS day, a.rep_id, h.team_id,
           coalesce(l.source, '') AS source, a.duration_seconds AS seconds
    FROM pipeline_activity a
    JOIN pipeline_lead l ON l.id = a.lead_id AND l.tenant_id = %(tenant)s
    {team}
    WHERE a.tenant_id = %(tenant)s AND a.type = 'call' AND a.duration_seconds > 0
      AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
)
SELECT day, 'tenant', '', sum(seconds) FROM c GROUP BY day
UNION ALL
SELECT day, 'team', team_id::text, sum(seconds) FROM c WHERE team_id IS NOT NULL
GROUP BY day, team_id
UNION ALL
SELECT day, 'rep', rep_id::text, sum(seconds) FROM c WHERE rep_id IS NOT NULL GROUP BY day, rep_id
UNION ALL
SELECT day, 'source', source, sum(seconds) FROM c GROUP BY day, source
""".format(team=team_span_join("h", "a.rep_id", "(a.occurred_at AT TIME ZONE %(tz)s)::date"))


def talk_seconds_pg(
    *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> DailyValues:
    lo, hi = bounds(start, end, zone)
    with connection.cursor() as cursor:
        cursor.execute(_TALK_SQL, {"tenant": tenant_id, "tz": zone.key, "lo": lo, "hi": hi})
        return {
            (day, scope_type, scope_key): Decimal(value)
            for day, scope_type, scope_key, value in cursor.fetchall()
        }


def long_calls_daily(
    *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> DailyValues:
    calls = _calls(start, end, zone).filter(duration_seconds__gte=LONG_CALL_SECONDS)
    return _attributed(calls, zone, Count("id"))


_ACTIVITY_SCOPES = {
    "tenant": "every call",
    "team": "the rep's team on the call's day",
    "rep": "the call's rep",
    "source": "the lead's source",
}
TALK_SECONDS = Measure(
    key="talk_seconds",
    description="Seconds spent on calls.",
    dirty_kinds=int(DirtyKind.ACTIVITIES),
    source="pipeline.Activity (calls)",
    attribution=_ACTIVITY_SCOPES,
    daily=talk_seconds_daily,
    pg_daily=talk_seconds_pg,
)
LONG_CALLS = Measure(
    key="long_calls",
    description=f"Calls of {LONG_CALL_SECONDS} seconds or more.",
    dirty_kinds=int(DirtyKind.ACTIVITIES),
    source="pipeline.Activity (calls)",
    attribution=_ACTIVITY_SCOPES,
    daily=long_calls_daily,
)


def register() -> None:
    register_measure(TALK_SECONDS)
    register_measure(LONG_CALLS)


def unregister() -> None:
    unregister_measure(TALK_SECONDS.key)
    unregister_measure(LONG_CALLS.key)
