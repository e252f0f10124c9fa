"""PostgreSQL: exact distinct counts (leads touched, active reps) kept up incrementally.

A refresh moves a period's stored distinct counts by what is new to the period, so its cost
follows the changed rows, not the tenant's size. Two mechanisms, one per measure:

- **Leads touched, from the touched leads' own histories.** Activities a write only added
  are listed with their day (DirtyDay.added_activities), and every other activity is already
  counted. So a (scope, lead) is new to a period exactly when the day's added rows touch it
  there and the lead's counted outreach in the period does not: index range reads of each
  touched lead's activities (a lead has a handful) answer it for every grain and scope at
  once, over the week and month, then over the fiscal year only for the leads that need
  it (`_lead_history`). Counted rows are the lead's rows less those
  still listed: by this day and the days after it in this refresh, and by any other dirty
  day (read in the same statement, so from the same snapshot as the rows).
- **Active reps, from membership rows** (KpiMember, kind "r"): a rep active in a period and
  scope is stored once; a refresh offers the reps active on its day with INSERT ... ON
  CONFLICT DO NOTHING and adds the number actually inserted. There are few of them (reps x
  scopes per period), and a refreshed day keeps its own (grain "day"), so only what is new
  to the day reaches its periods, found by one read of the day's stored rows. Months nest
  in fiscal quarters and quarters in fiscal years: a quarter is offered only its month's
  new rows, a year its quarter's.

A period's members are complete once it was built from its raw rows (KpiMemberPeriod),
less the activities still listed by dirty days that the building refresh does not handle
(the refresh of such a day adds them, as to any period); a day's once it was read whole (a
KpiMemberPeriod row of grain "day"). A day whose members are complete reads only its added
activities; any other is read whole, its own counts recomputed from its raw rows. A day
whose added rows are not known (rows changed, moved or deleted, or marks that could not list
them) drops its own members and its periods', which are then built again from raw rows.
Team follows the rep's team on the activity's local day (the team history): a move marks
the days it covers for a rescan, which drops their members and their periods'. Source
follows the lead's current source; a change is reflected by recounting the lead's days.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from django.db import connection

from kpis.aggregates import Rows, bounds
from kpis.catalogue import DISTINCT_MEASURES
from kpis.models import KpiMember, KpiMemberPeriod
from kpis.periods import Grain, Period, period_containing
from kpis.snapshots import literals_sql
from kpis.snapshots.daily_sql import ACTIVITY_COUNTS, local_settings
from tenants.models import SINCE_ALWAYS, MemberTeamSpan

Counts = dict[str, dict[tuple[str, str], dict[str, int]]]

_COARSE = ("week", "month", "quarter", "year")

# The range's activities (or only the listed ones) grouped per (rep, lead) with their
# counts. Each distinct lead's source is looked up through the lead's primary key in one
# index scan over an array of ids (a join would hash every lead of the tenant).
_PAIRS = """{uncounted}
acts AS MATERIALIZED (
    SELECT a.rep_id AS rep, a.lead_id AS lead, h.team_id AS team, {counts}
    FROM pipeline_activity a
    {team}
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s{listed}
    GROUP BY 1, 2, 3
),
lead_sources AS MATERIALIZED (
    SELECT l.id AS lead, coalesce(l.source, '') AS src
    FROM pipeline_lead l
    WHERE l.tenant_id = %(tenant)s AND l.id = ANY (ARRAY(SELECT DISTINCT lead FROM acts))
),
pairs AS MATERIALIZED (
    SELECT p.*, coalesce(s.src, '') AS src
    FROM acts p
    LEFT JOIN lead_sources s USING (lead)
),
range_actives AS (
    -- NOTE: reduced to distinct (rep, team, source) before expanding to the four scopes.
    SELECT DISTINCT s.scope_type, s.scope_key, p.rep AS member
    FROM (SELECT DISTINCT rep, team, src FROM pairs WHERE rep IS NOT NULL) p
    CROSS JOIN LATERAL (VALUES
        ('tenant', ''), ('team', p.team::text), ('rep', p.rep::text), ('source', p.src)
    ) AS s(scope_type, scope_key)
    WHERE s.scope_key IS NOT NULL
)"""

# A period built from its raw rows counts only the rows counted everywhere else: not those
# still listed by a dirty day that this refresh does not handle. The refresh that handles
# that day adds them to every period then, this one included; counted here too, a lead
# would be counted twice (seen when a period was first built while a batch's days waited).
# Read in the same statement as the rows, so a batch committed meanwhile is seen whole (its
# rows and its marks) or not at all.
_UNCOUNTED = """
uncounted AS MATERIALIZED (
    SELECT jsonb_array_elements_text(d.added_activities)::bigint AS id
    FROM pipeline_dirtyday d
    WHERE d.tenant_id = %(tenant)s AND d.added_activities IS NOT NULL
      AND NOT (d.day = ANY(%(refreshing)s::date[]))
),"""
_NOT_UNCOUNTED = "\n      AND NOT EXISTS (SELECT FROM uncounted u WHERE u.id = a.id)"

# The day's active reps not stored for it yet (an anti-join against one read of the day's
# stored rows), stored now: only they can be new to its periods.
_DAY_ACTIVES = """,
stored_day AS MATERIALIZED (
    SELECT k.scope_type, k.scope_key, k.member FROM kpis_kpimember k
    WHERE k.tenant_id = %(tenant)s AND k.grain = 'day' AND k.period_start = %(day)s
      AND k.kind = 'r'
),
actives AS MATERIALIZED (
    INSERT INTO kpis_kpimember
        (tenant_id, grain, period_start, scope_type, scope_key, kind, member)
    SELECT %(tenant)s, 'day', %(day)s, c.scope_type, c.scope_key, 'r', c.member
    FROM range_actives c
    WHERE NOT EXISTS (
        SELECT FROM stored_day o
        WHERE o.scope_type = c.scope_type AND o.scope_key = c.scope_key AND o.member = c.member
    )
    RETURNING scope_type, scope_key, member
)"""

_RANGE_ACTIVES = """,
actives AS MATERIALIZED (SELECT * FROM range_actives)"""

_OFFER = """,
active_{grain} AS (
    INSERT INTO kpis_kpimember
        (tenant_id, grain, period_start, scope_type, scope_key, kind, member)
    SELECT DISTINCT %(tenant)s, '{grain}', %(start_{grain})s, scope_type, scope_key, 'r', member
    FROM {source}
    ON CONFLICT DO NOTHING
    RETURNING scope_type, scope_key, member
)"""

# The leads the listed activities touched, and whether each (scope, lead) is new to each
# period (see the module docstring). `touch_new` holds the listed outreach per (lead, rep).
_PENDING = """,
pending AS MATERIALIZED (
    SELECT unnest(%(pending)s::bigint[]) AS id
    UNION
    SELECT jsonb_array_elements_text(d.added_activities)::bigint
    FROM pipeline_dirtyday d
    WHERE d.tenant_id = %(tenant)s AND d.added_activities IS NOT NULL
      AND NOT (d.day = ANY(%(refreshing)s::date[]))
)"""

# The counted outreach of the leads `leads` selects in the window `window`, per (lead, rep,
# team) with one flag per period.
# NOTE: one index scan over the array of touched leads (a probe per lead in a loop costs
# twice as much in executor start-up; a join would scan every activity of the tenant).
# TRICKY: the tenant id comes through a scalar subquery: for a tenant the statistics have
# not seen (estimated at one row) a constant made the planner scan all of the tenant's
# rows of the year, filtering the leads, instead of seeking each lead.
_HISTORY = """,
{name} AS MATERIALIZED (
    SELECT h.lead, h.rep, h.team, {in_periods}
    FROM (
        SELECT a.id, a.lead_id AS lead, a.rep_id AS rep, ts.team_id AS team, a.occurred_at AS at
        FROM pipeline_activity a
        {history_team}
        WHERE a.tenant_id = (SELECT %(tenant)s::bigint)
          AND a.lead_id = ANY (ARRAY(SELECT {leads}))
          AND a.occurred_at >= %(lo_{window})s AND a.occurred_at < %(hi_{window})s
          AND a.type IN ('call', 'email')
    ) h
    WHERE NOT EXISTS (SELECT FROM pending p WHERE p.id = h.id)
    GROUP BY 1, 2, 3
)"""

# The touched leads whose history must also be read over a wider period: those with a
# touched rep, team (or, without a rep, the tenant) that has no counted outreach of the lead
# in `flag`'s period. Every other touched (scope, lead) has one there, so is not new to any
# period containing it. Joins, not NOT EXISTS: an OR of correlated subqueries cannot hash.
_WIDER = """,
{name} AS MATERIALIZED (
    SELECT DISTINCT t.lead
    FROM touch_new t
    LEFT JOIN (SELECT DISTINCT lead, rep FROM {counted} WHERE {flag}) r
        ON r.lead = t.lead AND r.rep = t.rep
    LEFT JOIN (SELECT DISTINCT lead, team FROM {counted} WHERE {flag}) m
        ON m.lead = t.lead AND m.team = t.team
    WHERE r.lead IS NULL OR (t.team IS NOT NULL AND m.lead IS NULL)
)"""

_MARKS = """,
marks AS MATERIALIZED (
    SELECT c.lead, c.rep, c.team, false AS added, {in_names}
    FROM counted c
    UNION ALL
    SELECT t.lead, t.rep, t.team, true, {always}
    FROM touch_new t
),
lead_new AS MATERIALIZED (
    SELECT n.*, coalesce(s.src, '') AS src
    FROM (SELECT lead, {flags} FROM marks GROUP BY lead) n
    LEFT JOIN lead_sources s USING (lead)
),
team_new AS MATERIALIZED (
    SELECT team, lead, {flags} FROM marks WHERE team IS NOT NULL
    GROUP BY team, lead HAVING bool_or(added)
),
rep_new AS MATERIALIZED (
    SELECT rep, lead, {flags} FROM marks WHERE rep IS NOT NULL
    GROUP BY rep, lead HAVING bool_or(added)
)"""


def _lead_history(grains: tuple[str, ...]) -> str:
    """The CTEs that tell, for each touched (scope, lead), whether it is new to the periods
    of `grains`: `counted` (its counted outreach there) and `marks` onwards.

    With a month, the history is read in two steps: the week and month first (`near`), then
    every period (`wide`, to the end of the fiscal year) only for the leads with a touched
    scope (rep, team, or the tenant for a call without a rep) not seen in the month. A lead
    worked again within the month by the same rep (the usual cadence) is read over a few
    weeks instead of its fiscal year. A quarter and a year contain the month, so a scope
    seen in the month is new to neither: what the first step skips cannot change a flag.
    """
    history_team = _span_join("ts")
    in_periods = ", ".join(
        f"bool_or(h.at >= %(lo_{g})s AND h.at < %(hi_{g})s) AS in_{g}" for g in grains
    )

    def read(name: str, leads: str, window: str) -> str:
        return _HISTORY.format(
            name=name, in_periods=in_periods, history_team=history_team, leads=leads,
            window=window,
        )  # fmt: skip

    touched = "DISTINCT lead FROM touch_new"
    sql = _PENDING
    if "month" in grains:
        sql += read("counted_near", touched, "near")
        sql += _WIDER.format(name="wider", counted="counted_near", flag="in_month")
        # TRICKY: the second step reads the whole window again, the first step's rows
        # included: the flags are ORs, which a row read twice leaves as they are, and
        # leaving the first window out (NOT BETWEEN) made the planner scan the tenant's
        # rows by time, filtering the leads, instead of seeking each lead.
        sql += read("counted_wide", "lead FROM wider", "wide")
        sql += ",\ncounted AS (\n    SELECT * FROM counted_near\n"
        sql += "    UNION ALL SELECT * FROM counted_wide\n)"
    else:
        sql += read("counted", touched, "wide")
    return sql + _MARKS.format(
        in_names=", ".join(f"c.in_{g}" for g in grains),
        always=", ".join("true" for _ in grains),
        flags=", ".join(
            f"NOT coalesce(bool_or(in_{g}) FILTER (WHERE NOT added), false) AS new_{g}"
            for g in grains
        ),
    )


_TOUCH_FROM_PAIRS = """,
touch_new AS MATERIALIZED (
    SELECT lead, rep, team FROM pairs WHERE outreach > 0
)"""

_TOUCH_LISTED = """,
touch_new AS MATERIALIZED (
    SELECT DISTINCT a.lead_id AS lead, a.rep_id AS rep, h.team_id AS team
    FROM pipeline_activity a
    {team}
    WHERE a.tenant_id = %(tenant)s AND a.id = ANY(%(ids)s::bigint[])
      AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s AND a.type IN ('call', 'email')
)"""


def _lead_counts(grains: tuple[str, ...], pad: str) -> str:
    """The new leads of each scope, one row per grain: each scope type is counted once for
    every grain and the counts are unpivoted (a branch per grain and scope type made the
    statement slow to plan)."""
    counts = ", ".join(f"count(*) FILTER (WHERE new_{g}) AS n_{g}" for g in grains)
    values = ", ".join(f"('{g}', c.n_{g})" for g in grains)
    branches = (
        ("'tenant'", "''", "lead_new", ""),
        ("'source'", "src", "lead_new", " GROUP BY src"),
        ("'team'", "team::text", "team_new", " GROUP BY team"),
        ("'rep'", "rep::text", "rep_new", " GROUP BY rep"),
    )
    return "\nUNION ALL".join(
        f"""
SELECT v.grain, c.scope_type, c.scope_key, 'l', v.n{pad}
FROM (SELECT {scope_type} AS scope_type, {scope_key} AS scope_key, {counts}
      FROM {source}{group}) c
CROSS JOIN LATERAL (VALUES {values}) AS v(grain, n)"""
        for scope_type, scope_key, source, group in branches
    )


def _active_counts(grain: str, source: str, pad: str) -> str:
    return f"""
SELECT '{grain}', scope_type, scope_key, 'r', count(*){pad} FROM {source}
    GROUP BY scope_type, scope_key"""


# The scope of a row grouped by GROUPING SETS ((), (team), (rep), (src)) over `pairs`.
_SCOPE = """
    SELECT CASE GROUPING(team, rep, src)
               WHEN 7 THEN 'tenant' WHEN 3 THEN 'team' WHEN 5 THEN 'rep' ELSE 'source'
           END AS scope_type,
           CASE GROUPING(team, rep, src)
               WHEN 7 THEN '' WHEN 3 THEN team::text WHEN 5 THEN rep::text ELSE src
           END AS scope_key,"""

# Exact distinct leads per scope of a whole range (a period built from its raw rows).
_RANGE_LEADS = """
SELECT '{grain}', x.scope_type, x.scope_key, 'l', x.n{pad}
FROM ({scope}
           count(DISTINCT lead) AS n
    FROM pairs
    WHERE outreach > 0
    GROUP BY GROUPING SETS ((), (team), (rep), (src))
) x
WHERE x.scope_key IS NOT NULL"""

# The day's activity counts per scope (changes when only the listed rows were read).
_DAY_COUNTS = """
SELECT 'day', x.scope_type, x.scope_key, 'd', 0::bigint, {names}
FROM ({scope}
           {distinct}{sums}
    FROM pairs
    GROUP BY GROUPING SETS ((), (team), (rep), (src))
) x
WHERE x.scope_key IS NOT NULL"""

_DAY_MEASURES = ("leads_touched", "active_reps", *ACTIVITY_COUNTS)

# The tenant's team history with each span's local days as instants (`_span_instants`).
_SPANS = """
spans AS MATERIALIZED (
    SELECT * FROM unnest(%(span_members)s::bigint[], %(span_teams)s::bigint[],
                         %(span_lo)s::timestamptz[], %(span_hi)s::timestamptz[])
        AS s(member_id, team_id, lo, hi)
),"""


def _span_join(alias: str) -> str:
    """A LEFT JOIN of the span `alias` of the activity `a`'s rep on its instant: as
    daily_sql's team_span_join on the local day, which it equals (see `_span_instants`).

    NOTE: the spans' days are turned into instants once, not every activity's instant into
    a local day: the refresh reads each touched lead's activities of a fiscal year (about
    twenty thousand rows for a batch of a thousand), and the conversion was a fifth of it.
    """
    return (
        f"LEFT JOIN spans {alias} ON {alias}.member_id = a.rep_id"
        f" AND ({alias}.lo IS NULL OR {alias}.lo <= a.occurred_at)"
        f" AND ({alias}.hi IS NULL OR a.occurred_at < {alias}.hi)"
    )


def _span_instants(tenant_id: int, zone: zoneinfo.ZoneInfo) -> dict[str, list[object]]:
    """The parameters of `_SPANS`: every span of the tenant (call in its context) from the
    first instant of its first local day (none: since always) to the first instant of the
    day after its last (none: still open).

    TRICKY: the instants are the local midnights of `kpis.aggregates.bounds`, which the
    refresh's day ranges use too, so an instant falls in a span exactly when its local day
    does, on days that start inside a clock change included.
    """
    rows = MemberTeamSpan.objects.filter(tenant_id=tenant_id).values_list(
        "member_id", "team_id", "valid_from", "valid_until"
    )
    params: dict[str, list[object]] = {
        "span_members": [], "span_teams": [], "span_lo": [], "span_hi": [],
    }  # fmt: skip
    for member_id, team_id, valid_from, valid_until in rows:
        params["span_members"].append(member_id)
        params["span_teams"].append(team_id)
        params["span_lo"].append(
            None if valid_from <= SINCE_ALWAYS else bounds(valid_from, valid_from, zone)[0]
        )
        params["span_hi"].append(
            None if valid_until is None else bounds(valid_until, valid_until, zone)[0]
        )
    return params


def _statement(grains: tuple[str, ...], *, day: bool, listed: bool, whole: bool) -> str:
    """One statement offering a range's members to one period of each of `grains`.

    `day`: the range is one day, whose activity counts it also returns (grain "day") and
    whose own active reps it stores. `listed`: the activities in the parameter `ids` are the
    only ones not counted yet; the leads they touch are checked against their histories.
    `whole`: the range is read whole (else only the listed rows, and the day's counts are
    changes). Without `day`, the range is a period built from its raw rows: its exact counts.
    """
    counts = ", ".join(f"{expression} AS {name}" for name, expression in ACTIVITY_COUNTS.items())
    if day:
        uncounted, listed_only = "", "" if whole else "\n      AND a.id = ANY(%(ids)s::bigint[])"
    else:
        uncounted, listed_only = _UNCOUNTED, _NOT_UNCOUNTED
    # Each activity counts for its rep's team on its local day (the team history).
    team = _span_join("h")
    sql = "WITH" + _SPANS
    sql += _PAIRS.format(counts=counts, listed=listed_only, uncounted=uncounted, team=team)
    sql += _DAY_ACTIVES if day else _RANGE_ACTIVES
    chained = {"quarter": "month", "year": "quarter"}
    for grain in grains:
        finer = chained.get(grain)
        source = f"active_{finer}" if finer in grains else "actives"
        sql += _OFFER.format(grain=grain, source=source)
    lead_grains = (*(() if whole else ("day",)), *grains) if listed else ()
    if lead_grains:
        sql += _TOUCH_LISTED.format(team=team) if whole else _TOUCH_FROM_PAIRS
        sql += _lead_history(lead_grains)
    pad = ", NULL::bigint" * len(_DAY_MEASURES) if day else ""
    selects: list[str] = []
    if day:
        sums = ", ".join(f"sum({name})::bigint AS {name}" for name in ACTIVITY_COUNTS)
        if whole:
            distinct = "count(DISTINCT lead) FILTER (WHERE outreach > 0) AS leads_touched, "
            distinct += "count(DISTINCT rep) AS active_reps, "
        else:
            distinct = "0::bigint AS leads_touched, 0::bigint AS active_reps, "
            selects.append(_active_counts("day", "actives", pad))
        names = ", ".join(f"x.{name}" for name in _DAY_MEASURES)
        selects.insert(
            0, _DAY_COUNTS.format(names=names, distinct=distinct, sums=sums, scope=_SCOPE)
        )
    else:
        # A period built from its raw rows: every member is new (its table part was empty).
        selects += [_RANGE_LEADS.format(grain=grain, pad=pad, scope=_SCOPE) for grain in grains]
    if lead_grains:
        selects.append(_lead_counts(lead_grains, pad))
    selects += [_active_counts(grain, f"active_{grain}", pad) for grain in grains]
    return sql + "\n" + "\nUNION ALL".join(selects)


_MEASURE = {KpiMember.Kind.LEAD: "leads_touched", KpiMember.Kind.REP: "active_reps"}
_STATEMENTS: dict[tuple[tuple[str, ...], bool, bool, bool], str] = {}


def _offer(
    tenant_id: int,
    periods: dict[str, Period],
    lo: datetime,
    hi: datetime,
    zone: zoneinfo.ZoneInfo,
    *,
    day: date | None = None,
    added: list[int] | None = None,
    whole: bool = True,
    pending: list[int] | None = None,
    refreshing: list[date] = (),
    spans: dict[str, list[object]],
) -> Counts:
    """Offer the members active in [lo, hi) to `periods` (one per grain); new counts.
    Run it inside `_hashed_joins()`.

    With `day` ([lo, hi) is that day), the result also holds the day's activity measures
    under the grain "day". `added`: the day's activities not counted yet, when known (else
    the periods must be built from raw rows, not offered); with `whole` False only they are
    read, and the day's measures are changes. `pending`: the ids of every activity this
    refresh has yet to count (those of `added` by default); `refreshing`: its days, whose
    dirty marks it holds. Without `day`, the range is one period's whole range and the
    counts are its exact counts. `spans`: the tenant's `_span_instants` (read once per pass).
    """
    grains = tuple(grain for grain in _COARSE if grain in periods)
    listed = added is not None and day is not None
    pending = pending if pending is not None else (added or [])
    key = (grains, day is not None, listed, whole)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _statement(grains, day=day is not None, listed=listed, whole=whole)
    params: dict[str, object] = {
        "tenant": tenant_id, "lo": lo, "hi": hi, "day": day, "tz": zone.key,
        "ids": None if added is None else literals_sql.numbers(added),
        "pending": literals_sql.numbers(pending), "refreshing": list(refreshing),
        **spans,
    }  # fmt: skip
    for grain, period in periods.items():
        params[f"start_{grain}"] = period.start
        params[f"lo_{grain}"], params[f"hi_{grain}"] = period.bounds(zone)
    if listed:
        params["lo_day"], params["hi_day"] = lo, hi
        # The windows of every period and of the finest ones (see `_lead_history`).
        for window, grains_in in (("wide", periods), ("near", ("week", "month"))):
            inside = [grain for grain in grains_in if grain in periods]
            params[f"lo_{window}"] = min([lo, *(params[f"lo_{g}"] for g in inside)])
            params[f"hi_{window}"] = max([hi, *(params[f"hi_{g}"] for g in inside)])
    added_counts: Counts = {}
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENTS[key], params)
        rows = cursor.fetchall()
    for grain, scope_type, scope_key, kind, count, *measures in rows:
        bucket = added_counts.setdefault(grain, {}).setdefault((scope_type, scope_key), {})
        if kind == "d":
            bucket.update(
                (name, value) for name, value in zip(_DAY_MEASURES, measures, strict=True) if value
            )
        elif count:
            bucket[_MEASURE[kind]] = count
    return added_counts


@contextmanager
def _hashed_joins() -> Iterator[None]:
    """Settings for the member statements of the block.

    TRICKY: the joins of their small sets must hash: the planner misjudges the sizes of the
    statements' CTEs and nested a scan of one in a loop over another (seen: 300 ms instead
    of 1). The LATERAL reads stay nested loops, as they must, but each such loop then costs
    the planner's penalty for a disabled plan, so JIT is off too: the inflated estimate made
    it compile every statement (600 ms each). Groupings hash rather than sort for the same
    reason (a few thousand rows each).
    """
    with (
        connection.cursor() as cursor,
        local_settings(cursor, enable_nestloop="off", enable_sort="off", jit="off"),
    ):
        yield


def _stored_counts(tenant_id: int, periods: list[Period]) -> dict[Period, Rows]:
    out: dict[Period, Rows] = {period: {} for period in periods}
    if not periods:
        return out
    by_start = {(p.grain, p.start): p for p in periods}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.grain, s.period_start, s.scope_type, s.scope_key, s.leads_touched,"
            " s.active_reps FROM kpis_kpisnapshot s"
            " JOIN unnest(%s::text[], %s::date[]) AS p(grain, period_start)"
            " ON s.grain = p.grain AND s.period_start = p.period_start"
            " WHERE s.tenant_id = %s",
            [[p.grain for p in periods], [p.start for p in periods], tenant_id],
        )
        for grain, start, scope_type, scope_key, leads, reps in cursor.fetchall():
            period = by_start[(grain, start)]
            out[period][(start, scope_type, scope_key)] = {
                "leads_touched": leads,
                "active_reps": reps,
            }
    return out


def _materialize(
    tenant_id: int,
    period: Period,
    zone: zoneinfo.ZoneInfo,
    refreshing: list[date],
    spans: dict[str, list[object]],
) -> Rows:
    """Build a period's members from its raw rows, but for the activities still listed by
    dirty days other than `refreshing` (the days of the caller's refresh); its exact distinct
    counts once those are added."""
    KpiMember.objects.filter(grain=period.grain, period_start=period.start).delete()
    lo, hi = period.bounds(zone)
    out: Rows = {}
    offered = _offer(
        tenant_id, {period.grain: period}, lo, hi, zone, refreshing=refreshing, spans=spans
    )
    for (scope_type, scope_key), counts in offered.get(period.grain, {}).items():
        out[(period.start, scope_type, scope_key)] = dict(counts)
    KpiMemberPeriod.objects.create(
        tenant_id=tenant_id, grain=period.grain, period_start=period.start
    )
    return out


def distinct_counts_for_days(
    *,
    tenant_id: int,
    days: list[date],
    periods: list[Period],
    zone: zoneinfo.ZoneInfo,
    added: dict[date, list[int]] | None = None,
) -> tuple[dict[Period, Rows], Rows, set[date]]:
    """Exact distinct counts of the coarse `periods` after the activities of `days` changed
    (of the scopes whose counts changed only, a scope left with none at zero), the activity
    measures of `days` (counts and the days' own distinct counts, per day and scope), and
    the days whose measures are changes rather than values.

    `added`: for each day whose only change is new activities, their ids. A period seen
    before gets what is new to it added to its stored counts; a period seen for the first
    time is built once from all of its raw rows. A day missing from `added` must have had
    its members and its periods' dropped (`forget`): its periods are then built anew.
    """
    added = added or {}
    starts = {p.start for p in periods} | set(added)
    materialized = set(
        KpiMemberPeriod.objects.filter(period_start__in=starts).values_list("grain", "period_start")
    )
    complete = {start for grain, start in materialized if grain == Grain.DAY}
    fresh = [p for p in periods if (p.grain, p.start) not in materialized]
    kept = {(p.grain, p.start): p for p in periods if p not in fresh}
    stored = _stored_counts(tenant_id, periods)
    result = {
        period: {key: dict(values) for key, values in stored[period].items()}
        for period in kept.values()
    }
    activities: Rows = {}
    changed = {day for day in days if day in added and day in complete}
    days = sorted(set(days))
    spans = _span_instants(tenant_id, zone)
    with _hashed_joins():
        for period in fresh:
            result[period] = _materialize(tenant_id, period, zone, days, spans)
        for index, day in enumerate(days):
            # The listed rows of this day and the next ones are not counted yet.
            pending = [pk for later in days[index:] for pk in added.get(later, ())]
            fiscal_start = periods[0].fiscal_year_start_month
            enclosing = {
                grain: kept[(grain, start)]
                for grain in _COARSE
                if (grain, start := period_containing(grain, day, fiscal_start).start) in kept
            }
            offered = _offer(
                tenant_id, enclosing, *bounds(day, day + timedelta(days=1), zone), zone,
                day=day, added=added.get(day), whole=day not in changed,
                pending=pending, refreshing=days, spans=spans,
            )  # fmt: skip
            _add_day(day, enclosing, offered, result, activities)
    _mark_complete(tenant_id, set(days) - complete)
    return {p: _changed_counts(stored[p], result[p]) for p in periods}, activities, changed


def _changed_counts(stored: Rows, counted: Rows) -> Rows:
    """The (period, scope) keys whose distinct counts differ from the stored ones, with
    their new counts (zeros for a scope that has none left): a refresh writes only those."""
    changed: Rows = {}
    for key in stored.keys() | counted.keys():
        new = counted.get(key, {})
        values = {name: new.get(name, 0) for name in DISTINCT_MEASURES}
        if values != {name: stored.get(key, {}).get(name, 0) for name in DISTINCT_MEASURES}:
            changed[key] = values
    return changed


def _add_day(
    day: date,
    enclosing: dict[str, Period],
    offered: Counts,
    result: dict[Period, Rows],
    activities: Rows,
) -> None:
    """Add what a day offered: its periods' changes to `result`, its own activity measures
    to `activities`."""
    for grain, changes in offered.items():
        if grain == "day":
            for (scope_type, scope_key), values in changes.items():
                if values:
                    activities[(day, scope_type, scope_key)] = values
            continue
        period = enclosing[grain]
        for (scope_type, scope_key), counts in changes.items():
            bucket = result[period].setdefault((period.start, scope_type, scope_key), {})
            for name, value in counts.items():
                bucket[name] = bucket.get(name, 0) + value


def _mark_complete(tenant_id: int, days: Collection[date]) -> None:
    """Record that every member of each of `days` is stored (after reading it whole or
    adding its new members to a complete set)."""
    if not days:
        return
    KpiMemberPeriod.objects.bulk_create(
        [
            KpiMemberPeriod(tenant_id=tenant_id, grain=Grain.DAY, period_start=day)
            for day in sorted(set(days))
        ],
        ignore_conflicts=True,
    )


def forget(*, periods: Iterable[Period] | None = None, days: Iterable[date] = ()) -> None:
    """Drop the tenant's membership rows: all (before a full rebuild), or those of `periods`,
    which are then built again from raw rows by their next refresh, and of `days`."""
    if periods is None:
        KpiMember.objects.all().delete()
        KpiMemberPeriod.objects.all().delete()
        return
    days = list(days)
    if days:
        KpiMember.objects.filter(grain=Grain.DAY, period_start__in=days).delete()
        KpiMemberPeriod.objects.filter(grain=Grain.DAY, period_start__in=days).delete()
    for period in periods:
        KpiMember.objects.filter(grain=period.grain, period_start=period.start).delete()
        KpiMemberPeriod.objects.filter(grain=period.grain, period_start=period.start).delete()


def warm(
    *, tenant_id: int, periods: list[Period], days: list[date], zone: zoneinfo.ZoneInfo
) -> int:
    """Build the members of those `periods` not built yet, then store the members of each
    of `days`; how many periods were built.

    The counts built here equal the stored snapshot counts (both come from the same raw
    rows under the tenant lock), so only the membership rows are kept. A day's members are
    stored after its periods are built, so each is already in every built period.
    """
    built = set(
        KpiMemberPeriod.objects.filter(period_start__in={p.start for p in periods}).values_list(
            "grain", "period_start"
        )
    )
    fresh = [p for p in periods if (p.grain, p.start) not in built]
    spans = _span_instants(tenant_id, zone)
    with _hashed_joins():
        for period in fresh:
            _materialize(tenant_id, period, zone, [], spans)
        for day in days:
            lo, hi = bounds(day, day + timedelta(days=1), zone)
            _offer(tenant_id, {}, lo, hi, zone, day=day, spans=spans)
    _mark_complete(tenant_id, days)
    return len(fresh)
