"""PostgreSQL membership rows that keep coarse distinct counts exact and incremental.

A member is a lead touched (kind "l") or a rep active (kind "r") in a coarse period and
scope. A refresh offers the members of its changed days with INSERT ... ON CONFLICT DO
NOTHING and adds the number actually inserted to the period's stored count, so its cost
follows the changed days, not the tenant's size.

TRICKY: the conflict checks are the cost, so members are offered along the implications
that hold between scopes and grains, and only what can still be new is offered:

- a lead not new to a rep in a period is not new to that rep's team or to the tenant, so
  team and tenant rows are offered only for (rep, lead) rows just inserted (plus leads
  touched without a rep, for the tenant);
- a lead has one source, so its source count rises exactly when its tenant row is new:
  source rows for leads are not stored, they are counted from the new tenant rows;
- months nest in fiscal quarters and quarters in fiscal years, so a quarter is offered only
  its month's new rows and a year its quarter's (weeks do not nest in months: the week and
  the month are each offered the day's new rows);
- a refreshed day keeps its own members (grain "day": its (rep, lead) touches, its leads
  touched without a rep under scope "tenant", and its active reps per scope), so the week
  and month are offered only what is new to the day, found by one read of the day's stored
  rows instead of a conflict check per member (a refresh re-reads the whole day, and most
  of its members were offered before). Every member stored for a day is in each built
  period containing the day: periods are offered the day's new members, and a period built
  from raw rows has them all. Members are never removed incrementally: a day whose rows
  were changed (rescan) drops its own rows along with its periods'.
- a day whose members are complete (a KpiMemberPeriod row of grain "day", written when the
  day was read whole) can take only its added activities: their (rep, lead) pairs are
  checked against the day's stored rows, and the day's counts move by what is new to it.

Team and source follow the rep's current team and the lead's current source; a change of
either (or a deleted or moved activity) is reflected exactly by the next full rebuild.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Q

from kpis.aggregates import Rows, bounds
from kpis.models import KpiMember, KpiMemberPeriod, KpiSnapshot
from kpis.periods import Grain, Period, period_containing
from kpis.pg_aggregates import ACTIVITY_COUNTS

Counts = dict[str, dict[tuple[str, str], dict[str, int]]]

_CTES = """
-- NOTE: the range's activities are read once (a day's rows are scattered over the table,
-- so each read costs a heap fetch per row) and reduced to (rep, lead) pairs.
pairs AS MATERIALIZED (
    SELECT a.rep_id AS rep, a.lead_id AS lead, bool_or(a.type IN ('call', 'email')) AS outreach
    FROM pipeline_activity a
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s
    GROUP BY 1, 2
),
touches AS MATERIALIZED (
    SELECT rep, lead FROM pairs WHERE outreach
),
actives AS MATERIALIZED (
    SELECT DISTINCT s.scope_type, s.scope_key, x.rep AS member
    FROM (
        -- NOTE: the source is looked up per distinct (rep, lead), through the lead's primary
        -- key: a join lets the planner hash every lead of the tenant for a day's activities.
        SELECT DISTINCT y.rep, (
            SELECT coalesce(l.source, '') FROM pipeline_lead l
            WHERE l.id = y.lead AND l.tenant_id = %(tenant)s
        ) AS src
        FROM pairs y
        WHERE y.rep IS NOT NULL
    ) x
    JOIN tenants_membership m ON m.id = x.rep
    CROSS JOIN LATERAL (VALUES
        ('tenant', ''), ('team', m.team_id::text), ('rep', x.rep::text), ('source', x.src)
    ) AS s(scope_type, scope_key)
    WHERE s.scope_key IS NOT NULL
)"""

# NOTE: a refreshed day's activities are read once for both its activity counts and its
# members, grouped per (rep, lead) with the counts. Each distinct lead's source is looked up
# through the lead's primary key in one index scan over an array of ids (a subquery per
# lead costs twice as much in executor start-up; a join hashes every lead of the tenant).
_DAY_CTES = """
acts AS MATERIALIZED (
    SELECT a.rep_id AS rep, a.lead_id AS lead, {counts}
    FROM pipeline_activity a
    WHERE a.tenant_id = %(tenant)s AND a.occurred_at >= %(lo)s AND a.occurred_at < %(hi)s{added}
    GROUP BY 1, 2
),
lead_sources AS MATERIALIZED (
    SELECT l.id AS lead, coalesce(l.source, '') AS src
    FROM pipeline_lead l
    WHERE l.tenant_id = %(tenant)s AND l.id = ANY (ARRAY(SELECT DISTINCT lead FROM acts))
),
pairs AS MATERIALIZED (
    SELECT p.*, coalesce(s.src, '') AS src, m.team_id AS team
    FROM acts p
    LEFT JOIN lead_sources s USING (lead)
    LEFT JOIN tenants_membership m ON m.id = p.rep AND m.tenant_id = %(tenant)s
),
day_members AS (
    SELECT 'rep' AS scope_type, rep::text AS scope_key, 'l' AS kind, lead AS member
    FROM pairs WHERE outreach > 0 AND rep IS NOT NULL
    UNION ALL
    SELECT 'tenant', '', 'l', lead FROM pairs WHERE outreach > 0 AND rep IS NULL
    UNION ALL
    -- NOTE: reduced to distinct (rep, team, source) before expanding to the four scopes.
    SELECT DISTINCT s.scope_type, s.scope_key, 'r', p.rep
    FROM (SELECT DISTINCT rep, team, src FROM pairs WHERE rep IS NOT NULL) p
    CROSS JOIN LATERAL (VALUES
        ('tenant', ''), ('team', p.team::text), ('rep', p.rep::text), ('source', p.src)
    ) AS s(scope_type, scope_key)
    WHERE s.scope_key IS NOT NULL
),
stored_day AS MATERIALIZED (
    SELECT k.scope_type, k.scope_key, k.kind, k.member FROM kpis_kpimember k
    WHERE k.tenant_id = %(tenant)s AND k.grain = 'day' AND k.period_start = %(day)s
),
-- TRICKY: the day's members not stored yet, by an anti-join against one range read of the
-- day's stored rows (a hash, not a probe per member); only they can be new to its periods.
new_day AS (
    INSERT INTO kpis_kpimember
        (tenant_id, grain, period_start, scope_type, scope_key, kind, member)
    SELECT %(tenant)s, 'day', %(day)s, c.scope_type, c.scope_key, c.kind, c.member
    FROM day_members c
    WHERE NOT EXISTS (
        SELECT FROM stored_day o
        WHERE o.scope_type = c.scope_type AND o.scope_key = c.scope_key
          AND o.kind = c.kind AND o.member = c.member
    )
    RETURNING scope_type, scope_key, kind, member
),
touches AS MATERIALIZED (
    SELECT CASE WHEN scope_type = 'rep' THEN scope_key::bigint END AS rep, member AS lead
    FROM new_day WHERE kind = 'l'
),
actives AS MATERIALIZED (
    SELECT scope_type, scope_key, member FROM new_day WHERE kind = 'r'
)"""

# The day's activity counts per scope, padded like the period counts.
_DAY_COUNTS = """
SELECT 'day', x.scope_type, x.scope_key, 'd', 0::bigint, {names}
FROM (
    SELECT CASE GROUPING(team, rep, src)
               WHEN 7 THEN 'tenant' WHEN 3 THEN 'team' WHEN 5 THEN 'rep' ELSE 'source'
           END AS scope_type,
           CASE GROUPING(team, rep, src)
               WHEN 7 THEN '' WHEN 3 THEN team::text WHEN 5 THEN rep::text ELSE src
           END AS scope_key,
           count(DISTINCT lead) FILTER (WHERE outreach > 0) AS leads_touched,
           count(DISTINCT rep) AS active_reps, {sums}
    FROM pairs
    GROUP BY GROUPING SETS ((), (team), (rep), (src))
) x
WHERE x.scope_key IS NOT NULL"""

_DAY_MEASURES = ("leads_touched", "active_reps", *ACTIVITY_COUNTS)

# With only the day's added activities read, its activity counts are the added rows' counts,
# and its distinct counts rise by the members new to the day: a lead is new to the day (its
# tenant and source) when no stored member of the day is that lead, and new to a team when
# no stored (rep, lead) member of the day has a rep of that team. Rows of kind "d" carry
# changes; each fills only its own measures.
_ADDED_CTES = """,
stored_leads AS MATERIALIZED (
    SELECT DISTINCT member AS lead FROM stored_day WHERE kind = 'l'
),
stored_team_leads AS MATERIALIZED (
    SELECT DISTINCT m.team_id AS team, o.member AS lead
    FROM stored_day o
    JOIN tenants_membership m
        ON m.id = CASE WHEN o.scope_type = 'rep' THEN o.scope_key::bigint END
    WHERE o.kind = 'l' AND o.scope_type = 'rep' AND m.team_id IS NOT NULL
),
new_leads AS MATERIALIZED (
    SELECT DISTINCT t.lead, coalesce(s.src, '') AS src
    FROM touches t
    LEFT JOIN lead_sources s USING (lead)
    WHERE NOT EXISTS (SELECT FROM stored_leads o WHERE o.lead = t.lead)
),
new_team_leads AS MATERIALIZED (
    SELECT DISTINCT m.team_id AS team, t.lead
    FROM touches t
    JOIN tenants_membership m ON m.id = t.rep AND m.tenant_id = %(tenant)s
    WHERE m.team_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM stored_team_leads o WHERE o.team = m.team_id AND o.lead = t.lead
    )
)"""

_ADDED_COUNTS = """
SELECT 'day', x.scope_type, x.scope_key, 'd', 0::bigint, 0::bigint, 0::bigint, {names}
FROM (
    SELECT CASE GROUPING(team, rep, src)
               WHEN 7 THEN 'tenant' WHEN 3 THEN 'team' WHEN 5 THEN 'rep' ELSE 'source'
           END AS scope_type,
           CASE GROUPING(team, rep, src)
               WHEN 7 THEN '' WHEN 3 THEN team::text WHEN 5 THEN rep::text ELSE src
           END AS scope_key,
           {sums}
    FROM pairs
    GROUP BY GROUPING SETS ((), (team), (rep), (src))
) x
WHERE x.scope_key IS NOT NULL
UNION ALL SELECT 'day', 'rep', rep::text, 'd', 0, count(*), 0{zeros}
    FROM touches WHERE rep IS NOT NULL GROUP BY rep
UNION ALL SELECT 'day', 'tenant', '', 'd', 0, count(*), 0{zeros} FROM new_leads
UNION ALL SELECT 'day', 'source', src, 'd', 0, count(*), 0{zeros} FROM new_leads GROUP BY src
UNION ALL SELECT 'day', 'team', team::text, 'd', 0, count(*), 0{zeros}
    FROM new_team_leads GROUP BY team
UNION ALL SELECT 'day', scope_type, scope_key, 'd', 0, 0, count(*){zeros}
    FROM actives GROUP BY scope_type, scope_key"""

_INSERT = """
{name} AS (
    INSERT INTO kpis_kpimember
        (tenant_id, grain, period_start, scope_type, scope_key, kind, member)
    SELECT DISTINCT %(tenant)s, '{grain}', %({grain})s, {columns}
    FROM {source}
    ON CONFLICT DO NOTHING
    RETURNING scope_type, scope_key, member
)"""


def _base_grain(grain: str) -> list[str]:
    """Inserts of a grain offered every touch of the changed range."""
    return [
        _INSERT.format(
            name=f"rep_{grain}",
            grain=grain,
            columns="'rep', rep::text, 'l', lead",
            source="touches WHERE rep IS NOT NULL",
        ),
        _INSERT.format(
            name=f"team_{grain}",
            grain=grain,
            columns="'team', m.team_id::text, 'l', r.member",
            source=(
                f"rep_{grain} r JOIN tenants_membership m ON m.id = r.scope_key::bigint "
                "WHERE m.team_id IS NOT NULL"
            ),
        ),
        _INSERT.format(
            name=f"tenant_{grain}",
            grain=grain,
            columns="'tenant', '', 'l', lead",
            source=(
                f"(SELECT member AS lead FROM rep_{grain} "
                "UNION SELECT lead FROM touches WHERE rep IS NULL) x"
            ),
        ),
        _INSERT.format(
            name=f"active_{grain}",
            grain=grain,
            columns="scope_type, scope_key, 'r', member",
            source="actives",
        ),
    ]


def _chained_grain(grain: str, finer: str) -> list[str]:
    """Inserts of a grain offered only what was new to the finer grain nested in it."""
    return [
        _INSERT.format(
            name=f"{level}_{grain}",
            grain=grain,
            columns=f"scope_type, scope_key, '{kind}', member",
            source=f"{level}_{finer}",
        )
        for level, kind in (("rep", "l"), ("team", "l"), ("tenant", "l"), ("active", "r"))
    ]


def _counts(grain: str, pad: str) -> str:
    return f"""
SELECT '{grain}', scope_type, scope_key, 'l', count(*){pad} FROM rep_{grain} GROUP BY 2, 3
UNION ALL SELECT '{grain}', scope_type, scope_key, 'l', count(*){pad}
    FROM team_{grain} GROUP BY 2, 3
UNION ALL SELECT '{grain}', 'tenant', '', 'l', count(*){pad} FROM tenant_{grain}
UNION ALL SELECT '{grain}', 'source', coalesce(l.source, ''), 'l', count(*){pad}
    FROM tenant_{grain} t JOIN pipeline_lead l ON l.id = t.member GROUP BY 3
UNION ALL SELECT '{grain}', scope_type, scope_key, 'r', count(*){pad}
    FROM active_{grain} GROUP BY 2, 3"""


def _statement(grains: list[str], *, day: bool = False, added: bool = False) -> str:
    """One statement offering a time range's members to one period of each of `grains`.

    With `day`, the range is one day: only the members new to the day are offered, and the
    statement also returns the day's activity counts (rows of grain "day"). With `added`,
    it reads only the day's activities listed in the parameter `ids`, and the day's counts
    it returns are changes (see _ADDED_COUNTS).
    """
    inserts: list[str] = []
    chained = {"quarter": "month", "year": "quarter"}
    for grain in grains:
        finer = chained.get(grain)
        inserts += _chained_grain(grain, finer) if finer in grains else _base_grain(grain)
    if not day:
        return (
            "WITH"
            + _CTES
            + ","
            + ",".join(inserts)
            + "\nUNION ALL".join(_counts(grain, "") for grain in grains)
        )
    ctes = _DAY_CTES.format(
        counts=", ".join(f"{expression} AS {name}" for name, expression in ACTIVITY_COUNTS.items()),
        added="\n      AND a.id = ANY(%(ids)s::bigint[])" if added else "",
    )
    sums = ", ".join(f"sum({name})::bigint AS {name}" for name in ACTIVITY_COUNTS)
    if added:
        ctes += _ADDED_CTES
        day_counts = _ADDED_COUNTS.format(
            names=", ".join(f"x.{name}" for name in ACTIVITY_COUNTS),
            sums=sums,
            zeros=", 0" * len(ACTIVITY_COUNTS),
        )
    else:
        day_counts = _DAY_COUNTS.format(
            names=", ".join(f"x.{name}" for name in _DAY_MEASURES), sums=sums
        )
    pad = ", NULL::bigint" * len(_DAY_MEASURES)
    return (
        "WITH"
        + ",".join([ctes, *inserts])
        + "\nUNION ALL".join([day_counts, *(_counts(grain, pad) for grain in grains)])
    )


_MEASURE = {KpiMember.Kind.LEAD: "leads_touched", KpiMember.Kind.REP: "active_reps"}
_STATEMENTS: dict[tuple[tuple[str, ...], bool, bool], str] = {}


def _offer(
    tenant_id: int,
    periods: dict[str, Period],
    lo: datetime,
    hi: datetime,
    *,
    day: date | None = None,
    added: list[int] | None = None,
) -> Counts:
    """Offer the members active in [lo, hi) to `periods` (one per grain); new counts.

    With `day` ([lo, hi) is that day), only members new to the day are offered, and the
    result also holds the day's activity measures under the grain "day". With `added`
    (the day's members are complete), only those activities of the day are read, and the
    day's measures are their changes.
    """
    grains = tuple(grain for grain in ("week", "month", "quarter", "year") if grain in periods)
    key = (grains, day is not None, added is not None)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _statement(list(grains), day=day is not None, added=added is not None)
    params: dict[str, object] = {
        "tenant": tenant_id, "lo": lo, "hi": hi, "day": day, "ids": added,
    }  # fmt: skip
    params |= {grain: period.start for grain, period in periods.items()}
    added: Counts = {}
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENTS[key], params)
        for grain, scope_type, scope_key, kind, count, *measures in cursor.fetchall():
            bucket = added.setdefault(grain, {}).setdefault((scope_type, scope_key), {})
            if kind == "d":
                bucket.update(
                    (name, value)
                    for name, value in zip(_DAY_MEASURES, measures, strict=True)
                    if value
                )
            elif count:
                bucket[_MEASURE[kind]] = count
    return added


def _stored_counts(periods: list[Period]) -> dict[Period, Rows]:
    out: dict[Period, Rows] = {period: {} for period in periods}
    by_start = {(p.grain, p.start): p for p in periods}
    condition = Q(pk__in=[])
    for period in periods:
        condition |= Q(grain=period.grain, period_start=period.start)
    for row in KpiSnapshot.objects.filter(condition).values(
        "grain", "period_start", "scope_type", "scope_key", "leads_touched", "active_reps"
    ):
        period = by_start[(row["grain"], row["period_start"])]
        out[period][(period.start, row["scope_type"], row["scope_key"])] = {
            "leads_touched": row["leads_touched"],
            "active_reps": row["active_reps"],
        }
    return out


def _materialize(tenant_id: int, period: Period, zone: zoneinfo.ZoneInfo) -> Rows:
    """Build a period's members from all of its raw rows; its exact distinct counts."""
    KpiMember.objects.filter(grain=period.grain, period_start=period.start).delete()
    lo, hi = period.bounds(zone)
    out: Rows = {}
    for (scope_type, scope_key), counts in (
        _offer(tenant_id, {period.grain: period}, lo, hi).get(period.grain, {}).items()
    ):
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
    """Exact distinct counts of the coarse `periods` after the activities of `days` changed,
    the activity measures of `days` (counts and the days' own distinct counts, per day and
    scope), and the days whose measures are changes rather than values.

    A period seen before gets the members new to its changed days added to its stored
    counts; a period seen for the first time is built once from all of its raw rows.
    `added`: days whose only change is the listed new activities; such a day whose members
    are complete reads just those rows, and its measures are changes to add to its stored
    ones. Any other day is read whole.
    """
    added = added or {}
    starts = {p.start for p in periods} | set(added)
    materialized = set(
        KpiMemberPeriod.objects.filter(period_start__in=starts).values_list("grain", "period_start")
    )
    complete = {start for grain, start in materialized if grain == Grain.DAY}
    fresh = [p for p in periods if (p.grain, p.start) not in materialized]
    kept = {(p.grain, p.start): p for p in periods if p not in fresh}
    result = _stored_counts(list(kept.values()))
    for period in fresh:
        result[period] = _materialize(tenant_id, period, zone)
    fiscal_start = periods[0].fiscal_year_start_month
    activities: Rows = {}
    changed = {day for day in days if day in added and day in complete}
    for day in sorted(set(days)):
        enclosing = {
            grain: kept[(grain, start)]
            for grain in ("week", "month", "quarter", "year")
            if (grain, start := period_containing(grain, day, fiscal_start).start) in kept
        }
        # NOTE: run even when no period containing the day is built: the statement also
        # counts the day's activities and stores the day's members.
        lo, hi = bounds(day, day + timedelta(days=1), zone)
        ids = added[day] if day in changed else None
        for grain, changes in _offer(tenant_id, enclosing, lo, hi, day=day, added=ids).items():
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
    _mark_complete(tenant_id, days)
    return result, activities, changed


def _mark_complete(tenant_id: int, days: Iterable[date]) -> None:
    """Record that every member of each of `days` is stored (after offering it whole or
    adding its new members to a complete set)."""
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
    for period in fresh:
        _materialize(tenant_id, period, zone)
    for day in days:
        lo, hi = bounds(day, day + timedelta(days=1), zone)
        _offer(tenant_id, {}, lo, hi, day=day)
    _mark_complete(tenant_id, days)
    return len(fresh)
