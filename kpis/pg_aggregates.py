"""PostgreSQL fast paths of the snapshot aggregates: one GROUPING SETS query per source table.

The portable ORM versions in `kpis.aggregates` run one query per scope type; on PostgreSQL
these run one query for all four scope types (tenant, team, rep, source), and the coarse
periods' distinct counts are computed per grain in one pass. Results are identical (the
snapshot tests run on both databases against the same reference).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
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


# NOTE: the lead's source is looked up through its primary key, once per distinct lead of a
# group of equal rows: a join lets the planner hash every lead of the tenant for the few
# thousand activities of a refreshed day.
_ACTIVITIES = """
SELECT x.*, (
    SELECT coalesce(l.source, '') FROM pipeline_lead l
    WHERE l.id = x.lead_id AND l.tenant_id = %(tenant)s
) AS src
FROM (
    SELECT {period} AS p, a.type, a.call_outcome, a.email_delivered, a.email_opened,
           a.email_clicked, a.lead_id, a.rep_id AS rep, m.team_id AS team
    FROM pipeline_activity a
    LEFT JOIN tenants_membership m ON m.id = a.rep_id
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
) x
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


# TRICKY: count(DISTINCT ...) per grain and scope would sort or hash every activity once per
# grain and scope (20 times for a rebuild). Instead the activities are reduced once to
# (local day, lead, rep) touches carrying the day's activity counts, and a touch is flagged
# when it is the first of its lead in a period: the latest earlier outreach day of the same
# lead (of the same lead and rep, of the same lead and team) falls in another period, or
# there is none. Summing a grain's flags per period and scope gives the exact distinct
# count of every grain from one pass (a lead has one source, so the lead flags also count
# the source scope). The touches are then folded to (day, rep, team, source), small enough
# to group per grain and scope cheaply, active reps included.
_BY_GRAIN = """
WITH cal AS MATERIALIZED (
    SELECT d::date AS d, {periods}
    FROM generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 day') AS d
),
touch AS (
    SELECT (a.occurred_at AT TIME ZONE %(tz)s)::date AS d, a.lead_id AS lead, a.rep_id AS rep,
           {counts}
    FROM pipeline_activity a
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
    GROUP BY 1, 2, 3
),
prior AS (
    SELECT t.*, m.team_id AS team, coalesce(l.source, '') AS src,
           max(t.d) FILTER (WHERE t.outreach > 0) OVER (PARTITION BY t.lead {before}) AS lead_prev,
           max(t.d) FILTER (WHERE t.outreach > 0)
               OVER (PARTITION BY t.lead, t.rep {before}) AS rep_prev,
           max(t.d) FILTER (WHERE t.outreach > 0)
               OVER (PARTITION BY t.lead, m.team_id {before}) AS team_prev
    FROM touch t
    JOIN pipeline_lead l ON l.id = t.lead AND l.tenant_id = %(tenant)s
    LEFT JOIN tenants_membership m ON m.id = t.rep
),
folded AS MATERIALIZED (
    SELECT f.d, f.rep, f.team, f.src, {sums}, {flags}
    FROM prior f
    LEFT JOIN cal pl ON pl.d = f.lead_prev
    LEFT JOIN cal pr ON pr.d = f.rep_prev
    LEFT JOIN cal pt ON pt.d = f.team_prev
    JOIN cal c ON c.d = f.d
    GROUP BY f.d, f.rep, f.team, f.src
)
{selects}
"""

_GRAIN_COLUMN = {"day": "d", "week": "w", "month": "m", "quarter": "q", "year": "y"}

# One grouping per grain over the folded rows; the day grain also carries the counts that
# its coarser periods sum from the stored day rows.
_BY_GRAIN_SELECT = """
SELECT '{grain}', c.{column}, GROUPING(x.team, x.rep, x.src), x.team, x.rep, x.src,
       sum(x.lead_{column}), sum(x.rep_{column}), sum(x.team_{column}),
       count(DISTINCT x.rep){counts}
FROM folded x JOIN cal c ON c.d = x.d
GROUP BY GROUPING SETS ((c.{column}), (c.{column}, x.team), (c.{column}, x.rep),
                        (c.{column}, x.src))"""


def _by_grain_sql(fiscal_start: int) -> str:
    names = list(ACTIVITY_COUNTS)
    periods = ", ".join(
        f"{_period_expression(grain, 'd', fiscal_start)} AS {column}"
        for grain, column in _GRAIN_COLUMN.items()
        if grain != "day"
    )
    flags = ", ".join(
        f"count(*) FILTER (WHERE f.outreach > 0 AND p{prefix}.{column} IS DISTINCT FROM "
        f"c.{column}) AS {level}_{column}"
        for level, prefix in (("lead", "l"), ("rep", "r"), ("team", "t"))
        for column in _GRAIN_COLUMN.values()
    )
    selects = "\nUNION ALL".join(
        _BY_GRAIN_SELECT.format(
            grain=grain,
            column=column,
            counts="".join(f", sum(x.{name})" if grain == "day" else ", NULL" for name in names),
        )
        for grain, column in _GRAIN_COLUMN.items()
    )
    return _BY_GRAIN.format(
        periods=periods,
        counts=",\n           ".join(
            f"{expression} AS {name}" for name, expression in ACTIVITY_COUNTS.items()
        ),
        before="ORDER BY t.d ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING",
        sums=", ".join(f"sum(f.{name}) AS {name}" for name in names),
        flags=flags,
        selects=selects,
    )


@contextmanager
def _local_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements of the block, restored after it.

    Set with is_local: a failed block needs no restoring, its rollback undoes them.
    """
    names = list(settings)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    previous = cursor.fetchone()
    assign = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)
    cursor.execute(assign, [v for name in names for v in (name, settings[name])])
    yield
    cursor.execute(assign, [v for pair in zip(names, previous, strict=True) for v in pair])


def activity_measures_by_grain(
    out: dict[str, Rows],
    *,
    tenant_id: int,
    start: date,
    end: date,
    fiscal_start: int,
    zone: zoneinfo.ZoneInfo,
) -> None:
    """Day activity counts, and distinct leads touched and active reps per day, week,
    month, quarter and year, per scope (one statement).

    Every period of every grain that overlaps [start, end) gets counts from the rows of
    [start, end) only, so pass boundaries that enclose whole periods of every grain.
    """
    names = list(ACTIVITY_COUNTS)
    params = _params(tenant_id, start, end, zone)
    params |= {"first": start, "last": end - timedelta(days=1)}
    # NOTE: the statement sorts and hashes a few hundred thousand touches; the default
    # work_mem would spill them to disk, and JIT compiling its many expressions costs more
    # than it saves on a one-off statement.
    with connection.cursor() as cursor, _local_settings(cursor, work_mem="256MB", jit="off"):
        cursor.execute(_by_grain_sql(fiscal_start), params)
        rows = cursor.fetchall()
    for (
        grain,
        period_start,
        grouping,
        team,
        rep,
        source,
        leads,
        rep_leads,
        team_leads,
        *rest,
    ) in rows:
        scope_type = _SETS[grouping]
        if scope_type == ScopeType.TENANT:
            key, touched = "", leads
        elif scope_type == ScopeType.TEAM:
            if team is None:
                continue
            key, touched = str(team), team_leads
        elif scope_type == ScopeType.REP:
            if rep is None:
                continue
            key, touched = str(rep), rep_leads
        else:
            key, touched = source, leads
        values = dict(zip(["active_reps", *names], rest, strict=False))
        values["leads_touched"] = touched
        out.setdefault(grain, {})[(period_start, scope_type, key)] = {
            name: value for name, value in values.items() if value
        }


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
