"""PostgreSQL fast paths of the snapshot aggregates: one GROUPING SETS query per source table.

The portable ORM versions in `kpis.aggregates` run one query per scope type; on PostgreSQL
these run one query for all four scope types (tenant, team, rep, source), and the coarse
periods' distinct counts are computed per grain in one pass. Results are identical (the
snapshot tests run on both databases against the same reference).
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from typing import Any

from django.db import connection

from kpis.aggregates import Rows, bounds
from kpis.scopes import ScopeType

# GROUPING(team, rep, src) is a bitmask of the columns *not* grouped in a row's set.
_SETS = {7: ScopeType.TENANT, 3: ScopeType.TEAM, 5: ScopeType.REP, 6: ScopeType.SOURCE}

_GROUP = """
SELECT p, GROUPING(team, rep, src) AS g, team, rep, src, {aggregates}
FROM ({inner}) x
GROUP BY GROUPING SETS ((p), (p, team), (p, rep), (p, src))
"""


def _period_expression(grain: str, local: str, fiscal_start: int) -> str:
    """SQL for the start date of the `grain` period containing the local timestamp `local`."""
    month = f"date_trunc('month', {local})"
    if grain == "day":
        return f"({local})::date"
    if grain == "week":
        return f"date_trunc('week', {local})::date"
    if grain == "month":
        return f"{month}::date"
    span = 3 if grain == "quarter" else 12
    # Months since the period's start: (month - fiscal start) mod span, kept non-negative.
    shift = f"((extract(month FROM {local})::int - {int(fiscal_start)} + 12) %% {span})"
    return f"({month} - make_interval(months => {shift}))::date"


def _run(
    out: Rows,
    inner: str,
    params: dict[str, Any],
    aggregates: dict[str, str],
    *,
    period_start: date | None = None,
) -> None:
    names = list(aggregates)
    sql = _GROUP.format(
        inner=inner, aggregates=", ".join(f"{aggregates[name]} AS {name}" for name in names)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            start, grouping, team, rep, source = row[:5]
            scope_type = _SETS[grouping]
            if scope_type == ScopeType.TENANT:
                key = ""
            elif scope_type == ScopeType.TEAM:
                if team is None:
                    continue
                key = str(team)
            elif scope_type == ScopeType.REP:
                if rep is None:
                    continue
                key = str(rep)
            else:
                key = source or ""
            bucket = out.setdefault((period_start or start, scope_type, key), {})
            for name, value in zip(names, row[5:], strict=True):
                if value:
                    bucket[name] = bucket.get(name, 0) + value


_ACTIVITIES = """
SELECT {period} AS p, a.type, a.call_outcome, a.email_delivered, a.email_opened,
       a.email_clicked, a.lead_id, a.rep_id AS rep, m.team_id AS team,
       coalesce(l.source, '') AS src
FROM pipeline_activity a
JOIN pipeline_lead l ON l.id = a.lead_id
LEFT JOIN tenants_membership m ON m.id = a.rep_id
WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
"""

_LOCAL = "{column} AT TIME ZONE %(tz)s"

ACTIVITY_COUNTS = {
    "calls": "count(*) FILTER (WHERE type = 'call')",
    "connects": "count(*) FILTER (WHERE type = 'call' AND call_outcome = 'connected')",
    "outreach": "count(*) FILTER (WHERE type IN ('call', 'email'))",
    "emails_sent": "count(*) FILTER (WHERE type = 'email')",
    "emails_delivered": "count(*) FILTER (WHERE type = 'email' AND email_delivered)",
    "emails_opened": "count(*) FILTER (WHERE type = 'email' AND email_opened)",
    "emails_clicked": "count(*) FILTER (WHERE type = 'email' AND email_clicked)",
}
ACTIVITY_DISTINCTS = {
    "leads_touched": "count(DISTINCT lead_id) FILTER (WHERE type IN ('call', 'email'))",
    "active_reps": "count(DISTINCT rep)",
}


def _params(tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    lo, hi = bounds(start, end, zone)
    return {"tenant": tenant_id, "lo": lo, "hi": hi, "tz": zone.key}


def activity_measures(
    out: Rows,
    *,
    tenant_id: int,
    start: date,
    end: date,
    zone: zoneinfo.ZoneInfo,
    distinct: bool = True,
) -> None:
    """Activity counts (and, with `distinct`, the day's distinct leads and reps) per day."""
    period = _period_expression("day", _LOCAL.format(column="a.occurred_at"), 4)
    _run(
        out,
        _ACTIVITIES.format(period=period),
        _params(tenant_id, start, end, zone),
        ACTIVITY_COUNTS | (ACTIVITY_DISTINCTS if distinct else {}),
    )


# TRICKY: count(DISTINCT ...) under GROUPING SETS sorts the whole input once per set and
# grain (20 sorts of every activity for a rebuild). Instead the activity rows are reduced
# once to distinct (day, lead, rep) touches, each coarser grain is derived from the next
# finer one (quarter from month, year from quarter), and each scope counts a hash-distinct
# set: the same exact numbers for a fraction of the work.
_DISTINCT_PIPELINE = """
WITH base AS MATERIALIZED (
    SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date AS d, a.lead_id AS lead, a.rep_id AS rep,
           m.team_id AS team, coalesce(l.source, '') AS src,
           a.type IN ('call', 'email') AS outreach
    FROM pipeline_activity a
    JOIN pipeline_lead l ON l.id = a.lead_id
    LEFT JOIN tenants_membership m ON m.id = a.rep_id
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
),
rep_day AS MATERIALIZED (
    SELECT DISTINCT d AS p, rep, lead FROM base WHERE outreach AND rep IS NOT NULL
),
lead_day AS MATERIALIZED (SELECT DISTINCT d AS p, lead, src FROM base WHERE outreach),
team_day AS MATERIALIZED (
    SELECT DISTINCT d AS p, team, lead FROM base WHERE outreach AND team IS NOT NULL
),
active_day AS MATERIALIZED (
    SELECT DISTINCT d AS p, rep, team, src FROM base WHERE rep IS NOT NULL
),
{grain_ctes}
SELECT grain, p, scope_type, scope_key, sum(leads) AS leads, sum(reps) AS reps FROM (
{selects}
) counted
GROUP BY grain, p, scope_type, scope_key
"""

# A lead has one source and a rep one team, so (period, rep, lead) pairs count the rep
# scope, (period, lead) pairs the tenant and source scopes and (period, team, lead) the team
# scope: three de-duplications per grain, each derived from the next finer grain's.
_GRAIN_CTES = """
rep_{grain} AS MATERIALIZED (SELECT DISTINCT {period} AS p, rep, lead FROM rep_{finer}),
lead_{grain} AS MATERIALIZED (SELECT DISTINCT {period} AS p, lead, src FROM lead_{finer}),
team_{grain} AS MATERIALIZED (SELECT DISTINCT {period} AS p, team, lead FROM team_{finer}),
active_{grain} AS MATERIALIZED (
    SELECT DISTINCT {period} AS p, rep, team, src FROM active_{finer}
),"""

_GRAIN_SELECTS = """
SELECT '{grain}' AS grain, p, 'tenant' AS scope_type, '' AS scope_key, count(*) AS leads,
       0 AS reps
FROM lead_{grain} GROUP BY p
UNION ALL
SELECT '{grain}', p, 'source', src, count(*), 0 FROM lead_{grain} GROUP BY p, src
UNION ALL
SELECT '{grain}', p, 'team', team::text, count(*), 0 FROM team_{grain} GROUP BY p, team
UNION ALL
SELECT '{grain}', p, 'rep', rep::text, count(*), 0 FROM rep_{grain} GROUP BY p, rep
UNION ALL
SELECT '{grain}', p, 'tenant', '', 0, count(DISTINCT rep) FROM active_{grain} GROUP BY p
UNION ALL
SELECT '{grain}', p, 'source', src, 0, count(DISTINCT rep) FROM active_{grain} GROUP BY p, src
UNION ALL
SELECT '{grain}', p, 'team', team::text, 0, count(DISTINCT rep)
FROM active_{grain} WHERE team IS NOT NULL GROUP BY p, team
UNION ALL
SELECT '{grain}', p, 'rep', rep::text, 0, 1 FROM active_{grain} GROUP BY p, rep"""

# Each grain is derived from the finest grain it is a union of.
_FINER = {"week": "day", "month": "day", "quarter": "month", "year": "quarter"}


def distinct_activity_measures_by_grain(
    out: dict[str, Rows],
    *,
    tenant_id: int,
    start: date,
    end: date,
    fiscal_start: int,
    zone: zoneinfo.ZoneInfo,
) -> None:
    """Distinct leads touched and active reps per day, week, month, quarter and year.

    Every period of every grain that overlaps [start, end) gets counts from the rows of
    [start, end) only, so pass boundaries that enclose whole periods of every grain.
    """
    grains = ["day", "week", "month", "quarter", "year"]
    ctes = "".join(
        _GRAIN_CTES.format(
            grain=grain,
            finer=_FINER[grain],
            period=_period_expression(grain, "p", fiscal_start),
        )
        for grain in grains[1:]
    ).rstrip(",")
    selects = "\nUNION ALL".join(_GRAIN_SELECTS.format(grain=grain) for grain in grains)
    sql = _DISTINCT_PIPELINE.format(grain_ctes=ctes, selects=selects)
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(tenant_id, start, end, zone))
        for grain, period_start, scope_type, scope_key, leads, reps in cursor.fetchall():
            bucket = out.setdefault(grain, {}).setdefault((period_start, scope_type, scope_key), {})
            if leads:
                bucket["leads_touched"] = leads
            if reps:
                bucket["active_reps"] = reps


_LEADS = """
SELECT {period} AS p, l.id, l.owner_id AS rep, m.team_id AS team, coalesce(l.source, '') AS src
FROM pipeline_lead l
LEFT JOIN tenants_membership m ON m.id = l.owner_id
WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(lo)s AND l.created_at < %(hi)s
"""

_TRANSITIONS = """
SELECT {period} AS p, t.to_stage, t.owner_id AS rep,
       CASE WHEN t.owner_id IS NOT NULL THEN t.team_id END AS team,
       coalesce(l.source, '') AS src
FROM pipeline_stagetransition t
JOIN pipeline_lead l ON l.id = t.lead_id
WHERE t.tenant_id = %(tenant)s AND t.at >= %(lo)s AND t.at < %(hi)s
"""

TRANSITION_COUNTS = {
    name: f"count(*) FILTER (WHERE to_stage = '{stage}')"
    for name, stage in (
        ("mqls", "mql"), ("sqls", "sql"), ("meetings", "meeting"),
        ("opportunities", "opportunity"), ("wins", "won"), ("losses", "lost"),
        ("recycles", "recycled"),
    )
}  # fmt: skip

_DEALS = """
SELECT {period} AS p, d.amount, coalesce(d.owner_id, l.owner_id) AS rep,
       CASE WHEN d.owner_id IS NOT NULL THEN dm.team_id ELSE lm.team_id END AS team,
       coalesce(l.source, '') AS src
FROM pipeline_deal d
JOIN pipeline_lead l ON l.id = d.lead_id
LEFT JOIN tenants_membership dm ON dm.id = d.owner_id
LEFT JOIN tenants_membership lm ON lm.id = l.owner_id
{join}
WHERE d.tenant_id = %(tenant)s AND d.{column} >= %(lo)s AND d.{column} < %(hi)s {condition}
"""


def other_measures(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Leads created, transitions and deals per day and scope."""
    params = _params(tenant_id, start, end, zone)

    def day(column: str) -> str:
        return _period_expression("day", _LOCAL.format(column=column), 4)

    _run(out, _LEADS.format(period=day("l.created_at")), params, {"leads_created": "count(*)"})
    _run(out, _TRANSITIONS.format(period=day("t.at")), params, TRANSITION_COUNTS)
    _run(
        out,
        _DEALS.format(
            period=day("d.created_at"),
            column="created_at",
            join="",
            condition="AND d.sourced_by_is",
        ),
        params,
        {"deals_created": "count(*)", "pipeline_created": "sum(amount)"},
    )
    _run(
        out,
        _DEALS.format(
            period=day("d.closed_at"),
            column="closed_at",
            join="JOIN pipeline_dealstage s ON s.id = d.stage_id",
            condition="AND s.is_won",
        ),
        params,
        {"won_deals": "count(*)", "revenue": "sum(amount)"},
    )
