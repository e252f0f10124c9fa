"""Comparisons, leaderboards and series ranges end to end, black box, over HTTP only.

Tenant A's generated batches (tests/kpis/test_end_to_end_api.py) go in with a
`records:write` token and are refreshed as in production; then, with a `kpis:read` token:

- `kpiSeries` with `comparison: PREVIOUS_PERIOD` and `SAME_PERIOD_LAST_YEAR` for weeks,
  months, fiscal quarters and years, the tenant and team East, for a count, two rates, the
  two distinct-count KPIs and the weighted pipeline. The range runs to May 2027 so that the
  points of late 2026 and 2027 compare with the data of 2025/26: every point's comparison
  period (label, grain, start, end) and its value, numerator and denominator are checked
  against the reference for that period. Covered: the previous ISO week across the new year
  (2026-W01 -> 2025-W52) and after a year of 53 ISO weeks (2027-W01 -> 2026-W53), week 53
  a year earlier (2026-W53 -> 2025-W52: the ISO week number is kept, clamped to the last
  week of a 52-week year, as `Period.same_period_last_year` documents), the previous fiscal
  quarter across the fiscal-year start (FY2026-Q1 -> FY2025-Q4), the same fiscal quarter a
  year earlier, and the previous fiscal year.
- `kpiValues` with both comparisons for days, weeks, months, fiscal quarters and years.
- `leaderboard` of March 2026 by REP, TEAM and SOURCE for `calls` and `connect_rate`, with
  the previous month: entries, order, ranks, labels, scopes, values and comparison values,
  the expectation computed here from the reference (best first, rank 1 the best; an entry
  whose value is null (zero denominator) has no rank and comes last; equal values share
  the rank of the first of them (1, 1, 3) and are listed in label order).
- `kpiSeries` ranges: start and end in the middle of periods (every period overlapping the
  dates [start, end] is a point), a one-day range, an end on a period's first day, and the
  cap of 400 points (400 days pass, 401 are a typed VALIDATION error, as is end < start).
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest

from kpis.periods import Period
from kpis.scopes import KpiScope
from tenants.models import Tenant
from tests.factories import TenantFactory, api_token
from tests.kpis.test_end_to_end_api import (
    CATALOGUE_KEYS,
    DESIGN_KPIS,
    Reference,
    TenantA,
    _containing,
    _scope,
    _tokens,
    ask,
    calendar,
    check_point,
    compare_series,
    compare_values,
    drained,
    ingest,
    period_of,
    refreshing,
    report,
    series,
    set_up_tenant_a,
    shown,
)

# Committed HTTP requests, so that the after-commit refresh runs as in production.
pytestmark = pytest.mark.django_db(transaction=True)

FY = 4  # tenant A's fiscal year starts in April
GRAINS = ("WEEK", "MONTH", "QUARTER", "YEAR")
COMPARISONS = ("PREVIOUS_PERIOD", "SAME_PERIOD_LAST_YEAR")
# A count, two rates, the two distinct-count KPIs and the stock.
SERIES_KPIS = (
    "calls", "connect_rate", "win_rate", "follow_ups_per_lead", "calls_per_rep_day",
    "weighted_pipeline",
)  # fmt: skip
# The data runs from 30 Nov 2025 to 30 Apr 2026: a range to May 2027 makes the points of
# Dec 2026 to Apr 2027 compare with it a year earlier (and covers 2026-W53).
RANGE_START, RANGE_END = dt.date(2025, 11, 1), dt.date(2027, 5, 31)

PERIOD = "period { label grain start end }"
VALUE = "value numerator denominator pending"
POINT = f"""fragment P on KpiSeriesPoint {{
  {PERIOD} value {{ {VALUE} }} comparison {{ {PERIOD} {VALUE} }}
}}"""


# --- the comparison periods, as DESIGN.md defines the calendar -------------------------------


def _period(grain: str, day: dt.date) -> Period:
    label, start, end = _containing(grain, day, FY)
    return Period(start, end, grain.lower(), label, FY)


def previous(period: Period) -> Period:
    """The period of the same grain that ends where this one starts."""
    return _period(period.grain.upper(), period.start - dt.timedelta(days=1))


def year_earlier(period: Period) -> Period:
    """The same period a year earlier: same ISO week number (week 53 -> the last week of a
    52-week year), same date otherwise (29 February -> 28 February)."""
    if period.grain == "week":
        year, week = (int(part) for part in period.label.split("-W"))
        weeks = dt.date(year - 1, 12, 28).isocalendar()[1]
        return _period("WEEK", dt.date.fromisocalendar(year - 1, min(week, weeks), 1))
    start = period.start
    if (start.month, start.day) == (2, 29):
        start = start.replace(day=28)
    return _period(period.grain.upper(), start.replace(year=start.year - 1))


SHIFT = {"PREVIOUS_PERIOD": previous, "SAME_PERIOD_LAST_YEAR": year_earlier}


def _competition_ranks(values: list[Any]) -> list[int | None]:
    """Ranks of values sorted best first: 1, 1, 3 for a tie; None for a null value."""
    ranks: list[int | None] = []
    for position, value in enumerate(values, start=1):
        if value is None:
            ranks.append(None)
        elif position > 1 and value == values[position - 2]:
            ranks.append(ranks[-1])
        else:
            ranks.append(position)
    return ranks


def test_the_expected_calendar_of_comparisons() -> None:
    """The expectations themselves, on the cases named in the module docstring."""
    cases = [
        ("2026-W01", "WEEK", previous, "2025-W52"),
        ("2027-W01", "WEEK", previous, "2026-W53"),
        ("2026-W53", "WEEK", year_earlier, "2025-W52"),
        ("2027-W01", "WEEK", year_earlier, "2026-W01"),
        ("FY2026-Q1", "QUARTER", previous, "FY2025-Q4"),
        ("FY2026-Q4", "QUARTER", year_earlier, "FY2025-Q4"),
        ("FY2026", "YEAR", previous, "FY2025"),
        ("2026-01", "MONTH", previous, "2025-12"),
    ]
    for label, grain, shift, want in cases:
        assert shift(_label(label, grain)).label == want, (label, shift.__name__)
    assert year_earlier(_label("2028-02-29", "DAY")).label == "2027-02-28"
    assert (_label("2026-W53", "WEEK").start, _label("2026-W53", "WEEK").end) == (
        dt.date(2026, 12, 28), dt.date(2027, 1, 4)
    )  # fmt: skip


def _label(label: str, grain: str) -> Period:
    if grain == "DAY":
        return period_of(label, grain, FY)
    for period in calendar(grain, dt.date(2024, 1, 1), dt.date(2028, 12, 31), FY):
        if period.label == label:
            return period
    raise AssertionError(label)


# --- set-up and requests --------------------------------------------------------------------


VALUES = f"""query($period: String!, $scope: ScopeInput, $comparison: Comparison) {{
  kpiValues(period: $period, scope: $scope, comparison: $comparison) {{
    {PERIOD} value {{ kpi {{ key }} {VALUE} }} comparison {{ kpi {{ key }} {PERIOD} {VALUE} }}
  }}
}}"""

LEADERBOARD = f"""query($kpi: String!, $period: String!, $by: LeaderboardBy!) {{
  leaderboard(kpi: $kpi, period: $period, by: $by, comparison: PREVIOUS_PERIOD) {{
    kpi {{ key }} by {PERIOD}
    entries {{
      rank label scope {{ type id source }}
      value {{ {PERIOD} {VALUE} }} comparison {{ {PERIOD} {VALUE} }}
    }}
  }}
}}"""


def _compared(
    ref: Reference,
    point: dict[str, Any],
    key: str,
    period: Period,
    comparison: Period,
    scope: KpiScope,
    where: str,
    mismatches: list[str],
) -> None:
    """The point's own value and its comparison value, each against the reference."""
    check_point(ref, point, key, period, scope, where, mismatches)
    other = point["comparison"]
    if other is None:
        mismatches.append(f"{key} {period.label} {where}: no comparison")
        return
    check_point(
        ref, {"period": other["period"], "value": other}, key, comparison, scope,
        f"{where} vs {comparison.label}", mismatches,
    )  # fmt: skip


def _exact(ref: Reference, key: str, period: Period, scope: KpiScope) -> Decimal | None:
    numerator, denominator = ref.kpi(key, period, scope)
    if denominator is None:
        return numerator
    return None if denominator == 0 else numerator * DESIGN_KPIS[key][2] / denominator


# --- the tests ------------------------------------------------------------------------------


def test_comparisons_leaderboards_and_series_ranges_over_http(graphql: Any) -> None:
    started = time.monotonic()
    # given tenant A's batches sent over HTTP and refreshed
    tenant, teams, reps = set_up_tenant_a()
    east = teams["IS East"]
    writer, reader = _tokens(tenant)
    with refreshing():
        for how, batch in TenantA().batches:
            ingest(graphql, writer, how, batch)
        drained(tenant)
    ingested = time.monotonic()
    ref = Reference(tenant)
    scopes = {
        "tenant": (_scope("TENANT"), KpiScope.tenant()),
        "team East": (_scope("TEAM", east), KpiScope.team(east.pk)),
    }
    mismatches: list[str] = []
    checked = 0

    # when kpiSeries is read with each comparison, per grain, scope and KPI
    specs = [
        (key, grain, name, comparison)
        for comparison in COMPARISONS
        for grain in GRAINS
        for name in scopes
        for key in SERIES_KPIS
    ]
    results = series(
        graphql,
        reader,
        [(k, g, scopes[n][0], c) for k, g, n, c in specs],
        POINT,
        start=RANGE_START,
        end=RANGE_END,
    )
    # then every point compares with the right period and that period's reference value
    seen: set[tuple[str, str, str]] = set()
    for (key, grain, name, comparison), points in zip(specs, results, strict=True):
        periods = calendar(grain, RANGE_START, RANGE_END, FY)
        got = [point["period"]["label"] for point in points]
        if got != [period.label for period in periods]:
            mismatches.append(f"{key} {grain} {name} {comparison}: periods {got}")
            continue
        for point, period in zip(points, periods, strict=True):
            other = SHIFT[comparison](period)
            _compared(ref, point, key, period, other, scopes[name][1],
                      f"{name} {comparison}", mismatches)  # fmt: skip
            seen.add((comparison, period.label, other.label))
            checked += 2
    # (and the comparisons are not trivially zero: the year-earlier values carry data)
    week53 = _label("2025-W52", "WEEK")
    assert ref.kpi("calls", week53, KpiScope.tenant())[0] > 0
    assert ref.kpi("calls", _label("2026-W01", "WEEK"), KpiScope.team(east.pk))[0] > 0

    # when kpiValues is read with each comparison for days, weeks, months, quarters, years
    labels = [
        ("2026-04-01", "DAY"), ("2026-12-01", "DAY"), ("2026-12-29", "DAY"),
        ("2026-W01", "WEEK"), ("2027-W01", "WEEK"), ("2026-W53", "WEEK"),
        ("2026-01", "MONTH"), ("2027-03", "MONTH"),
        ("FY2026-Q1", "QUARTER"), ("FY2026-Q4", "QUARTER"),
        ("FY2026", "YEAR"),
    ]  # fmt: skip
    for label, grain in labels:
        period = _label(label, grain)
        for comparison in COMPARISONS:
            other = SHIFT[comparison](period)
            for name, (scope_input, scope) in scopes.items():
                rows = ask(graphql, reader, VALUES,
                           {"period": label, "scope": scope_input, "comparison": comparison}
                           )["kpiValues"]  # fmt: skip
                assert [row["value"]["kpi"]["key"] for row in rows] == CATALOGUE_KEYS
                for row in rows[: len(DESIGN_KPIS)]:
                    key = row["value"]["kpi"]["key"]
                    assert row["comparison"]["kpi"]["key"] == key
                    _compared(ref, row, key, period, other, scope,
                              f"values {name} {comparison}", mismatches)  # fmt: skip
                    checked += 2
    # and without a comparison there is none
    rows = ask(graphql, reader, VALUES, {"period": "2026-03"})["kpiValues"]
    assert {row["comparison"] is None for row in rows} == {True}

    # when the leaderboards of March 2026 are read with the previous month
    month, before = _label("2026-03", "MONTH"), _label("2026-02", "MONTH")
    candidates: dict[str, list[tuple[str, dict[str, Any], KpiScope]]] = {
        "REP": [
            (member.display_name or name, {"type": "REP", "source": None}, KpiScope.rep(member.pk))
            for name, member in reps.items()
        ],
        "TEAM": [
            (team.name, {"type": "TEAM", "source": None}, KpiScope.team(team.pk))
            for team in teams.values()
        ],
        # the sources with data in the month ("" for leads without one)
        "SOURCE": [
            (source or "(no source)", {"type": "SOURCE", "source": source}, KpiScope.source(source))
            for source in sorted({lead["source"] or "" for lead in ref.raw.leads})
            if any(
                value
                for measure, value in ref_measures(ref, month, KpiScope.source(source)).items()
                if measure not in ("working_days",)
            )
        ],
    }
    assert len(candidates["SOURCE"]) >= 4
    nulls = 0
    ties = 0
    for key in ("calls", "connect_rate", "win_rate"):
        for by, entrants in candidates.items():
            board = ask(graphql, reader, LEADERBOARD, {"kpi": key, "period": "2026-03", "by": by})[
                "leaderboard"
            ]
            assert (board["kpi"]["key"], board["by"]) == (key, by)
            assert board["period"] == {"label": "2026-03", "grain": "MONTH",
                                       "start": "2026-03-01", "end": "2026-04-01"}  # fmt: skip
            # best first, nulls last, equal values by label sharing the first one's rank
            scored = [(label, shape, scope, _exact(ref, key, month, scope))
                      for label, shape, scope in entrants]  # fmt: skip
            scored.sort(key=lambda e: (e[3] is None, -(e[3] or 0), e[0]))
            values_ = [e[3] for e in scored if e[3] is not None]
            ties += len(values_) - len(set(values_))
            ranks = _competition_ranks([value for _, _, _, value in scored])
            want = [
                (rank, label, shape["type"], shape["source"])
                for rank, (label, shape, _, _) in zip(ranks, scored, strict=True)
            ]
            got = [
                (e["rank"], e["label"], e["scope"]["type"], e["scope"]["source"])
                for e in board["entries"]
            ]
            if got != want:
                mismatches.append(f"leaderboard {key} by {by}: {got} != {want}")
                continue
            for entry, (label, _, scope, value) in zip(board["entries"], scored, strict=True):
                nulls += value is None
                where = f"leaderboard {by} {label}"
                _compared(ref, {"period": entry["value"]["period"], **entry}, key, month,
                          before, scope, where, mismatches)  # fmt: skip
                if shown(value) != (None if entry["value"]["value"] is None
                                    else Decimal(entry["value"]["value"])):  # fmt: skip
                    mismatches.append(f"{where}: value {entry['value']['value']}")
                checked += 2
            if by == "REP":
                ids = {e["scope"]["id"] for e in board["entries"]}
                assert ids == {_scope("REP", m)["id"] for m in reps.values()}
    # (March has no equal values: May 2026, without data, ties every rep and team at 0 calls
    # (all rank 1),
    # and has a null connect rate for each; no source has data in it)
    assert ties == 0
    for key, by in (("calls", "REP"), ("calls", "TEAM"), ("connect_rate", "REP"),
                    ("calls", "SOURCE")):  # fmt: skip
        board = ask(graphql, reader, LEADERBOARD, {"kpi": key, "period": "2026-05", "by": by})
        got = [
            (e["rank"], e["label"], e["value"]["value"]) for e in board["leaderboard"]["entries"]
        ]
        labels_ = sorted(label for label, _, _ in candidates[by]) if by != "SOURCE" else []
        null = key == "connect_rate"
        want = [(None if null else 1, label, None if null else "0.0000")
                for label in labels_]  # fmt: skip
        assert got == want, (key, by, got, want)

    # when kpiSeries ranges start and end inside periods
    ranges = [
        (dt.date(2026, 1, 14), dt.date(2026, 2, 3)),  # Wed .. Tue, mid-month, mid-quarter
        (dt.date(2026, 3, 31), dt.date(2026, 4, 1)),  # across the fiscal-year start
        (dt.date(2026, 2, 11), dt.date(2026, 2, 11)),  # one day
        (dt.date(2026, 1, 31), dt.date(2026, 3, 1)),  # last day of one, first day of another
    ]
    for start, end in ranges:
        specs_r = [(key, grain, "tenant", None) for grain in (*GRAINS, "DAY")
                   for key in ("calls", "follow_ups_per_lead", "weighted_pipeline")]  # fmt: skip
        results = series(graphql, reader, [(k, g, scopes[n][0], c) for k, g, n, c in specs_r],
                         POINT, start=start, end=end)  # fmt: skip
        for (key, grain, name, _), points in zip(specs_r, results, strict=True):
            # then every period overlapping the dates [start, end] is a point
            periods = calendar(grain, start, end, FY)
            got = [point["period"]["label"] for point in points]
            if got != [period.label for period in periods]:
                mismatches.append(f"range {start}..{end} {grain}: {got}")
                continue
            for point, period in zip(points, periods, strict=True):
                assert point["comparison"] is None
                check_point(ref, point, key, period, scopes[name][1], f"range {start}..{end}",
                            mismatches)  # fmt: skip
                checked += 1
    weeks = calendar("WEEK", dt.date(2026, 1, 14), dt.date(2026, 2, 3), FY)
    assert [w.label for w in weeks] == ["2026-W03", "2026-W04", "2026-W05", "2026-W06"]
    assert (weeks[0].start, weeks[-1].end) == (dt.date(2026, 1, 12), dt.date(2026, 2, 9))

    assert not mismatches, report(mismatches)
    # (the cases named in the docstring were among them)
    for case in [
        ("PREVIOUS_PERIOD", "2026-W01", "2025-W52"),
        ("PREVIOUS_PERIOD", "2027-W01", "2026-W53"),
        ("SAME_PERIOD_LAST_YEAR", "2026-W53", "2025-W52"),
        ("SAME_PERIOD_LAST_YEAR", "2027-W01", "2026-W01"),
        ("PREVIOUS_PERIOD", "FY2026-Q1", "FY2025-Q4"),
        ("SAME_PERIOD_LAST_YEAR", "FY2026-Q4", "FY2025-Q4"),
        ("SAME_PERIOD_LAST_YEAR", "2027-03", "2026-03"),
        ("PREVIOUS_PERIOD", "FY2026", "FY2025"),
    ]:
        assert case in seen, case
    assert nulls >= 1, "some rep, team or source has no opportunity in March (null win rate)"
    assert checked > 3_000, checked
    print(
        f"\ncomparisons end to end: {checked} values checked; ingestion and refresh "
        f"{ingested - started:.1f} s, total {time.monotonic() - started:.1f} s"
    )


def ref_measures(ref: Reference, period: Period, scope: KpiScope) -> dict[str, Any]:
    """The reference's measures of a period and scope (computed once, as Reference does)."""
    ref.kpi("calls", period, scope)
    return ref.cache[(period, scope)]


CAPPED = """query($grain: Grain!, $start: Date!, $end: Date!) {
  kpiSeries(kpi: "calls", grain: $grain, start: $start, end: $end) {
    points { period { label } }
  }
}"""


def test_series_of_more_than_400_points_is_a_typed_error(graphql: Any) -> None:
    tenant = TenantFactory(slug="acme", name="Acme", fiscal_year_start_month=FY)
    _, reader = _tokens(tenant)
    # 400 days (1 Jan 2025 to 4 Feb 2026 inclusive) pass
    points = ask(graphql, reader, CAPPED,
                 {"grain": "DAY", "start": "2025-01-01", "end": "2026-02-04"}
                 )["kpiSeries"]["points"]  # fmt: skip
    assert len(points) == 400
    assert (points[0]["period"]["label"], points[-1]["period"]["label"]) == (
        "2025-01-01", "2026-02-04"
    )  # fmt: skip
    # 401 weeks' worth of overlap, one day more, and an inverted range are typed errors
    for variables, field in (
        ({"grain": "DAY", "start": "2025-01-01", "end": "2026-02-05"}, "start"),
        ({"grain": "WEEK", "start": "2019-01-01", "end": "2026-09-30"}, "start"),
        ({"grain": "DAY", "start": "2026-02-05", "end": "2026-02-04"}, "end"),
    ):
        status, body = graphql(CAPPED, variables, token=reader)
        assert status == 200, body
        assert body["data"] is None, variables
        expected = {"code": "VALIDATION", "field": field}
        assert body["errors"][0]["extensions"] == expected, (variables, body)
    # exactly 400 weeks pass: 2019-W01 (31 Dec 2018) .. 400 weeks later
    last = dt.date(2018, 12, 31) + dt.timedelta(weeks=399)
    points = ask(graphql, reader, CAPPED,
                 {"grain": "WEEK", "start": "2019-01-01", "end": last.isoformat()}
                 )["kpiSeries"]["points"]  # fmt: skip
    assert len(points) == 400 and points[0]["period"]["label"] == "2019-W01"


UPDATE_MEMBER = """mutation($input: UpdateMemberInput!) {
  updateMember(input: $input) { member { team { name } } errors { code field message } }
}"""


def test_a_backdated_mid_month_team_move_over_http_matches_the_reference(graphql: Any) -> None:
    """The reference follows the team history too: a rep moved to the other team from the
    middle of a month (backdated, over the API) splits their facts between the teams by day,
    and every KPI of both teams, the rep and the tenant equals the reference's."""
    # given tenant A's batches sent over HTTP and refreshed
    tenant, teams, reps = set_up_tenant_a()
    east, west, ren = teams["IS East"], teams["IS West"], reps["ren"]
    writer, reader = _tokens(tenant)
    admin = api_token(tenant, "config:write", name="admin")
    with refreshing():
        for how, batch in TenantA().batches:
            ingest(graphql, writer, how, batch)
        drained(tenant)
        # when ren (IS East) moves to IS West from Monday 16 March 2026, recorded today
        moved = ask(graphql, admin, UPDATE_MEMBER, {"input": {
            "id": _scope("REP", ren)["id"], "teamId": _scope("TEAM", west)["id"],
            "teamEffectiveFrom": "2026-03-16",
        }})["updateMember"]  # fmt: skip
        assert moved == {"member": {"team": {"name": "IS West"}}, "errors": []}
        drained(tenant)
    # (no rebuild: only the move's days were refreshed)
    assert Tenant.objects.get(pk=tenant.pk).kpi_rebuild_requested_at is None
    ref = Reference(tenant)

    # (the reference splits ren's calls by the history: with East in the week before the
    # move, with West in the week of it; and ren has calls in both)
    def calls(period: Period, *scopes: KpiScope) -> Decimal:
        return sum((ref.kpi("calls", period, scope)[0] for scope in scopes), Decimal(0))

    ren_, rio, sam = (KpiScope.rep(reps[name].pk) for name in ("ren", "rio", "sam"))
    before, after = _label("2026-W11", "WEEK"), _label("2026-W12", "WEEK")
    assert calls(before, ren_) > 0 and calls(after, ren_) > 0
    assert calls(before, KpiScope.team(east.pk)) == calls(before, ren_, rio)
    assert calls(before, KpiScope.team(west.pk)) == calls(before, sam)
    assert calls(after, KpiScope.team(east.pk)) == calls(after, rio)
    assert calls(after, KpiScope.team(west.pk)) == calls(after, ren_, sam)
    scopes = {
        "tenant": (_scope("TENANT"), KpiScope.tenant()),
        "team East": (_scope("TEAM", east), KpiScope.team(east.pk)),
        "team West": (_scope("TEAM", west), KpiScope.team(west.pk)),
        "rep ren": (_scope("REP", ren), KpiScope.rep(ren.pk)),
    }
    # then every KPI of every week, month, quarter and fiscal year equals the reference
    checked, mismatches = compare_series(graphql, reader, ref, scopes, GRAINS)
    # and so does every KPI of the days either side of the move and of the month's last day
    days = [("2026-03-15", "DAY"), ("2026-03-16", "DAY"), ("2026-03-31", "DAY")]
    more, found = compare_values(graphql, reader, ref, scopes, days)
    mismatches += found
    assert not mismatches, report(mismatches)
    assert checked + more > 2_000, checked + more
