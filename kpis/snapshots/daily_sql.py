"""PostgreSQL fast paths of the snapshot aggregates: one GROUPING SETS query per source table.

The portable ORM versions in `kpis.aggregates` run one query per scope type; on PostgreSQL
these run one query for all four scope types (tenant, team, rep, source), the coarse
periods' distinct counts are computed per grain in one pass, and the weighted pipeline's
stage intervals are walked in SQL rather than in Python. Results are identical (the
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
from kpis.periods import period_containing
from kpis.scopes import ScopeType

# GROUPING(team, rep, src) is a bitmask of the columns *not* grouped in a row's set.
_SETS = {7: ScopeType.TENANT, 3: ScopeType.TEAM, 5: ScopeType.REP, 6: ScopeType.SOURCE}

_GROUP = """
SELECT p, GROUPING(team, rep, src) AS g, team, rep, src, {aggregates}
FROM ({inner}) x
GROUP BY GROUPING SETS ((p), (p, team), (p, rep), (p, src))
"""


def team_span_join(alias: str, member: str, day: str) -> str:
    """A LEFT JOIN of the team-history span `alias` of the member `member` covering the
    local day `day` (SQL expressions): `alias.team_id` is the member's team that day.

    TRICKY: a range join on the effective dates (docs/kpis.md "Scopes"). A member's spans
    never overlap, so at most one row matches and the join never multiplies the rows it
    annotates; no match (no member, or a member stored without history) gives no team.
    The spans are few (a handful per member), so the planner hashes them on the member and
    checks the range as a join filter; nothing sorts or scans per row.
    """
    return (
        f"LEFT JOIN tenants_memberteamspan {alias} ON {alias}.member_id = {member}"
        f" AND {alias}.tenant_id = %(tenant)s AND {alias}.valid_from <= {day}"
        f" AND ({alias}.valid_until IS NULL OR {day} < {alias}.valid_until)"
    )


def _local_day(column: str) -> str:
    return f"({column} AT TIME ZONE %(tz)s)::date"


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
           a.email_clicked, a.lead_id, a.rep_id AS rep, h.team_id AS team
    FROM pipeline_activity a
    {team}
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
        _ACTIVITIES.format(
            period=period, team=team_span_join("h", "a.rep_id", _local_day("a.occurred_at"))
        ),
        _params(tenant_id, start, end, zone),
        ACTIVITY_COUNTS | (ACTIVITY_DISTINCTS if distinct else {}),
    )


# TRICKY: count(DISTINCT ...) per grain and scope would sort or hash every activity once per
# grain and scope (20 times for a rebuild). Instead the activities are reduced once to
# (local day, lead, rep) touches carrying the day's activity counts, and a touch is flagged
# when it is the first of its lead in a period: the latest earlier outreach day of the same
# lead (of the same lead and rep, of the same lead and team) falls before the start of the
# touch's period (periods are contiguous and that day is never later than the touch), or
# there is none. Summing a grain's flags per period and scope gives the exact distinct
# count of every grain from one pass (a lead has one source, so the lead flags also count
# the source scope). The touches are then folded to (day, rep, team, source), small enough
# to group per grain and scope cheaply, active reps included.
_BY_GRAIN = """
WITH touch AS (
    SELECT a.lead_id AS lead, (a.occurred_at AT TIME ZONE %(tz)s)::date AS d, a.rep_id AS rep,
           {counts}
    FROM pipeline_activity a
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
    GROUP BY 1, 2, 3
),
prior AS (
    SELECT t.*, h.team_id AS team, coalesce(l.source, '') AS src, {periods},
           max(t.d) FILTER (WHERE t.outreach > 0) OVER (PARTITION BY t.lead {before}) AS lead_prev,
           max(t.d) FILTER (WHERE t.outreach > 0)
               OVER (PARTITION BY t.lead, t.rep {before}) AS rep_prev,
           max(t.d) FILTER (WHERE t.outreach > 0)
               OVER (PARTITION BY t.lead, h.team_id {before}) AS team_prev
    FROM touch t
    JOIN pipeline_lead l ON l.id = t.lead AND l.tenant_id = %(tenant)s
    {team}
),
folded AS MATERIALIZED (
    SELECT f.d, f.rep, f.team, f.src, {sums}, {flags}
    FROM prior f
    GROUP BY f.d, f.rep, f.team, f.src
)
{selects}
"""

_GRAIN_COLUMN = {"day": "d", "week": "w", "month": "m", "quarter": "q", "year": "y"}

# One grouping per grain over the folded rows; the day grain also carries the counts that
# its coarser periods sum from the stored day rows.
_BY_GRAIN_SELECT = """
SELECT '{grain}', x.{column}, GROUPING(x.team, x.rep, x.src), x.team, x.rep, x.src,
       sum(x.lead_{column}), sum(x.rep_{column}), sum(x.team_{column}),
       count(DISTINCT x.rep){counts}
FROM {source} x
GROUP BY GROUPING SETS ((x.{column}), (x.{column}, x.team), (x.{column}, x.rep),
                        (x.{column}, x.src))"""

# NOTE: the grouping sets of a grain sort their rows once per set (count(DISTINCT) cannot be
# hashed); a coarse grain first folds its day rows to (period, rep, team, source), a few
# times fewer rows to sort.
_COARSE_SOURCE = """(
    SELECT (%({column})s::date[])[f.d - %(first)s::date + 1] AS {column}, f.rep, f.team, f.src,
           sum(f.lead_{column}) AS lead_{column}, sum(f.rep_{column}) AS rep_{column},
           sum(f.team_{column}) AS team_{column}
    FROM folded f
    GROUP BY 1, 2, 3, 4
)"""


def _by_grain_sql() -> str:
    names = list(ACTIVITY_COUNTS)
    # NOTE: a touch's period starts are looked up by day number in arrays (one element per
    # day of the range) rather than joined from a calendar: the planner cannot estimate such
    # a join and sorts every touch by day for a merge join.
    periods = ", ".join(
        f"(%({column})s::date[])[t.d - %(first)s::date + 1] AS {column}"
        for grain, column in _GRAIN_COLUMN.items()
        if grain != "day"
    )
    flags = ", ".join(
        f"count(*) FILTER (WHERE f.outreach > 0 AND "
        f"(f.{level}_prev IS NULL OR f.{level}_prev < f.{column})) AS {level}_{column}"
        for level in ("lead", "rep", "team")
        for column in _GRAIN_COLUMN.values()
    )
    selects = "\nUNION ALL".join(
        _BY_GRAIN_SELECT.format(
            grain=grain,
            column=column,
            counts="".join(f", sum(x.{name})" if grain == "day" else ", NULL" for name in names),
            source="folded" if grain == "day" else _COARSE_SOURCE.format(column=column),
        )
        for grain, column in _GRAIN_COLUMN.items()
    )
    return _BY_GRAIN.format(
        team=team_span_join("h", "t.rep", "t.d"),
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
def local_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements of the block, restored after it.

    Set with is_local: a failed block needs no restoring, its rollback undoes them. Each
    setting is read before it is set, in one statement (a target list is evaluated in order).
    """
    names = list(settings)
    swap = "SELECT " + ", ".join("current_setting(%s), set_config(%s, %s, true)" for _ in names)
    cursor.execute(swap, [v for name in names for v in (name, name, settings[name])])
    previous = cursor.fetchone()[::2]
    assign = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)
    yield
    cursor.execute(assign, [v for pair in zip(names, previous, strict=True) for v in pair])


@contextmanager
def bulk_settings() -> Iterator[None]:
    """Settings for the statements of a full rebuild (restored after the block).

    NOTE: a rebuild sorts and hashes a few hundred thousand rows per statement: the default
    work_mem spills them to disk, and JIT compiling their many expressions costs more than
    it saves on one-off statements. TRICKY: it joins whole tables, which only hash or merge
    joins do in linear time; without statistics (a bulk load not yet analysed) the planner
    chose nested loops that rescanned every lead of the tenant per activity (34 s instead
    of 0.2 s for 6,000 leads), so nested loops are off, except where a LATERAL probe needs one.
    """
    with (
        connection.cursor() as cursor,
        local_settings(cursor, work_mem="256MB", jit="off", enable_nestloop="off"),
    ):
        yield


@contextmanager
def refresh_settings() -> Iterator[None]:
    """Settings for the statements of an incremental refresh (restored after the block).

    NOTE: each statement reads a few thousand rows through indexes in a few milliseconds:
    starting a parallel worker or JIT compiling costs more than the statement itself (a
    one-day transition count took 9 ms alone and 20-40 ms with a worker).
    """
    with (
        connection.cursor() as cursor,
        local_settings(cursor, max_parallel_workers_per_gather="0", jit="off"),
    ):
        yield


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
    [start, end) only, so pass boundaries that enclose whole periods of every grain. Run it
    inside `bulk_settings()`.
    """
    names = list(ACTIVITY_COUNTS)
    params = _params(tenant_id, start, end, zone)
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    params["first"] = start
    for grain, column in _GRAIN_COLUMN.items():
        if grain != "day":
            params[column] = [period_containing(grain, day, fiscal_start).start for day in days]
    # TRICKY: grouped by hashing, the touches cost a hash table of every (lead, day, rep)
    # and then a full sort by lead for the windows. Read in lead order from the covering
    # index (activity_lead_history), each lead's few rows are sorted by day on their own,
    # grouped as they stream and reach the windows sorted by lead: a sixth less time for
    # 1M activities. The planner takes that path once hashing is off for the statement.
    with connection.cursor() as cursor, local_settings(cursor, enable_hashagg="off"):
        cursor.execute(_by_grain_sql(), params)
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
SELECT {period} AS p, l.id, l.created_owner_id AS rep, h.team_id AS team,
       coalesce(l.source, '') AS src
FROM pipeline_lead l
{team}
WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(lo)s AND l.created_at < %(hi)s
"""

_TRANSITIONS = """
SELECT {period} AS p, t.to_stage, t.owner_id AS rep, h.team_id AS team, {source} AS src
FROM pipeline_stagetransition t
{team}
{join}
WHERE t.tenant_id = %(tenant)s AND t.at >= %(lo)s AND t.at < %(hi)s
"""

# NOTE: for a few days (a refresh) the source is looked up per transition by the lead's
# primary key: with a join the planner hashes every lead of the tenant (46 ms of a 57 ms
# statement for one day). For a rebuild the hash join is the cheaper of the two.
_SHORT_RANGE_DAYS = 7
_LEAD_SOURCE = (
    "(SELECT coalesce(l.source, '') FROM pipeline_lead l "
    "WHERE l.id = t.lead_id AND l.tenant_id = %(tenant)s)"
)

TRANSITION_COUNTS = {
    name: f"count(*) FILTER (WHERE to_stage = '{stage}')"
    for name, stage in (
        ("mqls", "mql"), ("sqls", "sql"), ("meetings", "meeting"),
        ("opportunities", "opportunity"), ("wins", "won"), ("losses", "lost"),
        ("recycles", "recycled"),
    )
}  # fmt: skip

_DEALS = """
SELECT {period} AS p, d.amount, coalesce(d.owner_id, l.owner_id) AS rep, h.team_id AS team,
       coalesce(l.source, '') AS src
FROM pipeline_deal d
JOIN pipeline_lead l ON l.id = d.lead_id
{team}
{join}
WHERE d.tenant_id = %(tenant)s AND d.{column} >= %(lo)s AND d.{column} < %(hi)s {condition}
"""


def _day(column: str) -> str:
    return _period_expression("day", _LOCAL.format(column=column), 4)


def other_measures(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Leads created, transitions and deals per day and scope."""
    for measures in (lead_measures, transition_measures, deal_measures):
        measures(out, tenant_id=tenant_id, start=start, end=end, zone=zone)


def lead_measures(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Leads created per day and scope."""
    params = _params(tenant_id, start, end, zone)
    team = team_span_join("h", "l.created_owner_id", _local_day("l.created_at"))
    _run(
        out,
        _LEADS.format(period=_day("l.created_at"), team=team),
        params,
        {"leads_created": "count(*)"},
    )


def transition_measures(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Lead stage transitions per day, target stage and scope."""
    params = _params(tenant_id, start, end, zone)
    if (end - start).days <= _SHORT_RANGE_DAYS:
        source, join = _LEAD_SOURCE, ""
    else:
        source, join = "coalesce(l.source, '')", "JOIN pipeline_lead l ON l.id = t.lead_id"
    _run(
        out,
        _TRANSITIONS.format(
            period=_day("t.at"),
            source=source,
            join=join,
            team=team_span_join("h", "t.owner_id", _local_day("t.at")),
        ),
        params,
        TRANSITION_COUNTS,
    )


def deal_measures(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Deals created and won, with their amounts, per day and scope."""
    params = _params(tenant_id, start, end, zone)
    _run(
        out,
        _DEALS.format(
            period=_day("d.created_at"),
            team=team_span_join(
                "h", "coalesce(d.owner_id, l.owner_id)", _local_day("d.created_at")
            ),
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
            period=_day("d.closed_at"),
            team=team_span_join("h", "coalesce(d.owner_id, l.owner_id)", _local_day("d.closed_at")),
            column="closed_at",
            join="JOIN pipeline_dealstage s ON s.id = d.stage_id",
            condition="AND s.is_won",
        ),
        params,
        {"won_deals": "count(*)", "revenue": "sum(amount)"},
    )


# A refresh's ranges are a few days: up to this many, deals are probed one by one.
PROBE_RANGE_DAYS = 31

# The deals with an instant in the range (only they can change the level on its days), each
# (deal, stage) interval (lo, hi] of a stage with a win probability, and the interval's
# value added on the local day of `lo` and removed on the day of `hi`, exactly as
# `kpis.aggregates.weighted_pipeline_changes` documents it.
# NOTE: the ids are collected with one index range each; an OR of the three defeats the
# indexes. `least` ignores NULLs: an open interval ends at the deal's close, if any.
_WEIGHTED_PIPELINE = """
WITH ids AS (
    SELECT d.id FROM pipeline_deal d
    WHERE d.tenant_id = %(tenant)s AND d.created_at >= %(lo)s AND d.created_at < %(hi)s
    UNION
    SELECT d.id FROM pipeline_deal d
    WHERE d.tenant_id = %(tenant)s AND d.closed_at >= %(lo)s AND d.closed_at < %(hi)s
    UNION
    SELECT c.deal_id FROM pipeline_dealstagechange c
    WHERE c.tenant_id = %(tenant)s AND c.at >= %(lo)s AND c.at < %(hi)s
    UNION
    -- The deals of members whose team changes on a day of the range: an open deal moves
    -- with its owner. NOTE: probed per such member through the owner indexes, so a range
    -- without a move reads nothing here.
    SELECT o.id
    FROM (
        SELECT DISTINCT s.member_id FROM tenants_memberteamspan s
        WHERE s.tenant_id = %(tenant)s AND s.valid_from >= %(start)s AND s.valid_from < %(end)s
    ) m
    CROSS JOIN LATERAL (
        SELECT d.id FROM pipeline_deal d
        WHERE d.tenant_id = %(tenant)s AND d.owner_id = m.member_id
        UNION ALL
        SELECT d.id FROM pipeline_lead l
        JOIN pipeline_deal d ON d.lead_id = l.id AND d.tenant_id = %(tenant)s
        WHERE l.tenant_id = %(tenant)s AND l.owner_id = m.member_id AND d.owner_id IS NULL
    ) o
),
{deals_and_intervals}days AS (
    SELECT i.*, (i.lo AT TIME ZONE %(tz)s)::date AS day_in,
           (i.hi AT TIME ZONE %(tz)s)::date AS day_out
    FROM intervals i
    WHERE i.hi IS NULL OR i.hi > i.lo
)
SELECT x.day_in AS p, x.rep, h.team_id AS team, x.src, x.v
FROM days x
{team_in}
WHERE x.day_out IS DISTINCT FROM x.day_in AND x.day_in >= %(start)s AND x.day_in < %(end)s
UNION ALL
SELECT x.day_out, x.rep, h.team_id, x.src, -x.v
FROM days x
{team_out}
WHERE x.day_out <> x.day_in AND x.day_out >= %(start)s AND x.day_out < %(end)s
UNION ALL
-- TRICKY: an open deal moves with its owner. On each day in (day_in, day_out] on which the
-- owner's team changes (a span `b` starts, the span `o` ending that day held the old team)
-- its value leaves the old team and joins the new one: two rows that cancel in the tenant,
-- rep and source sums, so only the team scope moves. The level of a team at a period's
-- end then holds the deals open then whose owner was in the team on its last day.
SELECT b.valid_from, x.rep, c.team, x.src, c.v
FROM days x
JOIN tenants_memberteamspan b
  ON b.member_id = x.rep AND b.tenant_id = %(tenant)s AND b.valid_from > x.day_in
 AND (x.day_out IS NULL OR b.valid_from <= x.day_out)
 AND b.valid_from >= %(start)s AND b.valid_from < %(end)s
JOIN tenants_memberteamspan o
  ON o.member_id = b.member_id AND o.tenant_id = %(tenant)s AND o.valid_until = b.valid_from
CROSS JOIN LATERAL (VALUES (b.team_id, x.v), (o.team_id, -x.v)) AS c(team, v)
WHERE x.day_out IS DISTINCT FROM x.day_in
"""

# Each deal's intervals and their values, from its history `h` (one row per stage change,
# numbered `n`, with the next change's time) joined to `deals` by the text that follows.
_INTERVALS_OF_DEALS = """intervals AS (
    -- A deal without history is in its current stage from its creation.
    SELECT d.rep, d.src,
           d.amount * coalesce(h.win_probability, d.win_probability) AS v,
           CASE WHEN h.n > 1 THEN greatest(h.at, d.created_at) ELSE d.created_at END AS lo,
           least(h.next_at, d.closed_at) AS hi
    FROM deals d
"""

# Short ranges (a refresh): each deal of the range is probed through its indexes.
_WEIGHTED_PROBES = (
    """
-- TRICKY: every look-up below is a LATERAL probe of a primary key or of the (tenant, deal,
-- at) index, so the plan cannot turn quadratic: with the statistics of a table loaded in
-- bulk and not yet analysed, the planner otherwise nested a scan of every lead or stage
-- change of the tenant inside a loop over the deals (seen: 30 s for 600 deals). The tenant
-- id is a scalar subquery: for a tenant the statistics have not seen (about one row) a
-- constant let an index on (tenant_id, ...) tie with the primary key, read every row of
-- the tenant in each probe.
deals AS MATERIALIZED (
    SELECT d.id, d.amount, d.created_at, d.closed_at, coalesce(d.owner_id, l.owner_id) AS rep,
           coalesce(l.source, '') AS src, s.win_probability, s.is_won OR s.is_lost AS shut
    FROM ids
    CROSS JOIN LATERAL (
        SELECT * FROM pipeline_deal d
        WHERE d.id = ids.id AND d.tenant_id = (SELECT %(tenant)s::bigint) LIMIT 1
    ) d
    CROSS JOIN LATERAL (
        SELECT l.owner_id, l.source FROM pipeline_lead l
        WHERE l.id = d.lead_id AND l.tenant_id = (SELECT %(tenant)s::bigint) LIMIT 1
    ) l
    CROSS JOIN LATERAL (
        SELECT s.win_probability, s.is_won, s.is_lost FROM pipeline_dealstage s
        WHERE s.id = d.stage_id AND s.tenant_id = (SELECT %(tenant)s::bigint) LIMIT 1
    ) s
),
"""
    + _INTERVALS_OF_DEALS
    + """    LEFT JOIN LATERAL (
        SELECT c.at, s.win_probability, s.is_won OR s.is_lost AS shut,
               row_number() OVER w AS n, lead(c.at) OVER w AS next_at
        FROM pipeline_dealstagechange c
        JOIN pipeline_dealstage s ON s.id = c.stage_id AND s.tenant_id = (SELECT %(tenant)s::bigint)
        WHERE c.tenant_id = (SELECT %(tenant)s::bigint) AND c.deal_id = d.id
        WINDOW w AS (ORDER BY c.at, c.id)
    ) h ON true
    WHERE NOT coalesce(h.shut, d.shut) AND coalesce(h.win_probability, d.win_probability) <> 0
),
"""
)

# Long ranges (a rebuild, a large import): whole sets joined by hash, run with nested
# loops off (see weighted_pipeline_changes).
_WEIGHTED_SETS = (
    """
deals AS MATERIALIZED (
    SELECT d.id, d.amount, d.created_at, d.closed_at, coalesce(d.owner_id, l.owner_id) AS rep,
           coalesce(l.source, '') AS src, s.win_probability, s.is_won OR s.is_lost AS shut
    FROM ids
    JOIN pipeline_deal d ON d.id = ids.id AND d.tenant_id = %(tenant)s
    JOIN pipeline_dealstage s ON s.id = d.stage_id AND s.tenant_id = %(tenant)s
    JOIN pipeline_lead l ON l.id = d.lead_id AND l.tenant_id = %(tenant)s
),
history AS (
    SELECT c.deal_id, c.at, s.win_probability, s.is_won OR s.is_lost AS shut,
           row_number() OVER w AS n, lead(c.at) OVER w AS next_at
    FROM pipeline_dealstagechange c
    JOIN pipeline_dealstage s ON s.id = c.stage_id AND s.tenant_id = %(tenant)s
    WHERE c.tenant_id = %(tenant)s AND c.deal_id IN (SELECT id FROM deals)
    WINDOW w AS (PARTITION BY c.deal_id ORDER BY c.at, c.id)
),
"""
    + _INTERVALS_OF_DEALS
    + """    LEFT JOIN history h ON h.deal_id = d.id
    WHERE NOT coalesce(h.shut, d.shut) AND coalesce(h.win_probability, d.win_probability) <> 0
),
"""
)


def weighted_pipeline_changes(
    out: Rows, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """The change of the weighted pipeline on each day of [start, end), per scope (one
    statement; `kpis.aggregates.weighted_pipeline_changes` is the portable twin)."""
    params = _params(tenant_id, start, end, zone) | {"start": start, "end": end}
    measure = {"weighted_pipeline_change": "sum(v)"}
    teams = {
        "team_in": team_span_join("h", "x.rep", "x.day_in"),
        "team_out": team_span_join("h", "x.rep", "x.day_out"),
    }
    if (end - start).days <= PROBE_RANGE_DAYS:
        sql = _WEIGHTED_PIPELINE.format(deals_and_intervals=_WEIGHTED_PROBES, **teams)
        _run(out, sql, params, measure)
        return
    # TRICKY: hash joins are linear whatever the statistics say; a nested loop chosen on
    # missing ones (a bulk load not yet analysed) rescanned every deal's history per deal.
    with connection.cursor() as cursor, local_settings(cursor, enable_nestloop="off"):
        sql = _WEIGHTED_PIPELINE.format(deals_and_intervals=_WEIGHTED_SETS, **teams)
        _run(out, sql, params, measure)
