"""Leads touched by new activities, counted against their histories read in steps.

On PostgreSQL a refresh of added activities reads each touched lead's outreach over the
week and month first, and over the fiscal year only for leads with a touched rep or team
not seen in the month (kpis.snapshots.members_sql._lead_history). Whatever is skipped,
every distinct count must equal a rebuild's: these tests touch leads last worked in the
same week, month, quarter, fiscal year or never, by the same rep, a teammate, another
team, a rep who moved team, and no rep.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from kpis.models import KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty, kpi_snapshots_warm
from pipeline import services as pipeline_services
from pipeline.models import DirtyDay
from tenants import members, team_history
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory
from tests.kpis.snapshot_rows import snapshot_diff, snapshot_table

UTC = dt.UTC
pytestmark = pytest.mark.django_db


def _team_of_reps(tenant: Any) -> tuple[list[Any], list[Any]]:
    """Reps 0 and 1 in East, 2 in West, 3 without a team; and two teams."""
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    reps = [
        members.membership_add(
            tenant=tenant, user=UserFactory(username=f"step{i}"), role=Role.REP, team=team
        )
        for i, team in enumerate((east, east, west, None))
    ]
    return reps, [east, west]


def _call(tenant: Any, lead: Any, rep: Any, at: dt.datetime, kind: str = "call") -> None:
    pipeline_services.activity_create(
        tenant=tenant, lead=lead, rep=rep, type=kind, call_outcome="", occurred_at=at
    )


def _refresh_and_compare(tenant: Any) -> None:
    """Refresh what the writes marked (their added rows listed), then check every stored
    row against a rebuild."""
    assert DirtyDay.objects.exclude(added_activities=None).exists()
    kpi_snapshots_refresh_dirty(tenant=tenant)
    incremental = snapshot_table()
    kpi_snapshots_rebuild(tenant=tenant)
    assert snapshot_diff(snapshot_table(), incremental) == []


def test_leads_last_worked_in_each_period_count_as_a_rebuild_does(tenant_a: Any) -> None:
    reps, teams = _team_of_reps(tenant_a)
    today = dt.datetime(2026, 9, 16, 3, tzinfo=UTC)  # a Wednesday, in Q2 of an April year
    with tenant_context(tenant_a):
        leads = [
            pipeline_services.lead_create(
                tenant=tenant_a,
                company=f"L{i}",
                source=["web", "event"][i % 2],
                created_at=dt.datetime(2026, 1, 5, tzinfo=UTC),
            )
            for i in range(10)
        ]
        history = (
            (0, 0, dt.datetime(2026, 9, 14, 3, tzinfo=UTC)),  # same week, same rep
            (1, 0, dt.datetime(2026, 9, 2, 3, tzinfo=UTC)),  # same month
            (2, 0, dt.datetime(2026, 7, 10, 3, tzinfo=UTC)),  # same quarter
            (3, 0, dt.datetime(2026, 5, 8, 3, tzinfo=UTC)),  # same fiscal year
            (4, 0, dt.datetime(2026, 3, 20, 3, tzinfo=UTC)),  # the fiscal year before
            (5, 1, dt.datetime(2026, 9, 2, 3, tzinfo=UTC)),  # a teammate, same month
            (6, 2, dt.datetime(2026, 7, 10, 3, tzinfo=UTC)),  # another team, same quarter
            (7, 3, dt.datetime(2026, 9, 2, 3, tzinfo=UTC)),  # a rep without a team
            (9, 2, dt.datetime(2026, 7, 10, 3, tzinfo=UTC)),  # West this quarter, then
            (9, 1, dt.datetime(2026, 9, 2, 3, tzinfo=UTC)),  # rep 1 in East this month
        )  # lead 8: never worked
        for lead, rep, at in history:
            _call(tenant_a, leads[lead], reps[rep], at)
        # given the history counted and the days' members stored (as every night)
        kpi_snapshots_rebuild(tenant=tenant_a)
        kpi_snapshots_warm(tenant=tenant_a, today=today.date())
        # and rep 1 moved to West from 10 September
        team_history.member_team_move(
            membership=reps[1], team=teams[1], effective_from=dt.date(2026, 9, 10)
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # when rep 0 calls every lead but the last today, a call without a rep touches two,
        # and rep 1 calls the last: seen by rep 1 this month, but for East, not West
        for lead in leads[:9]:
            _call(tenant_a, lead, reps[0], today)
        _call(tenant_a, leads[3], None, today)
        _call(tenant_a, leads[8], None, today)
        _call(tenant_a, leads[9], reps[1], today)
        # then the refresh equals a rebuild
        _refresh_and_compare(tenant_a)
        row = KpiSnapshot.objects.get(
            grain="year", period_start=dt.date(2026, 4, 1), scope_type="rep", scope_key=reps[0].pk
        )
        # rep 0 touched every lead this year: the four it worked before today too
        assert row.leads_touched == 9
        east_quarter = KpiSnapshot.objects.get(
            grain="quarter",
            period_start=dt.date(2026, 7, 1),
            scope_type="team",
            scope_key=teams[0].pk,
        )
        assert east_quarter.leads_touched == 10  # lead 9 too, by rep 1 before the move
        west_quarter = KpiSnapshot.objects.get(
            grain="quarter",
            period_start=dt.date(2026, 7, 1),
            scope_type="team",
            scope_key=teams[1].pk,
        )
        assert west_quarter.leads_touched == 2  # leads 6 and 9, by rep 2 in July


def test_a_week_across_a_quarter_and_a_moved_rep_count_as_a_rebuild_does(tenant_a: Any) -> None:
    """The week of 1 October starts in the quarter (and month) before: its rows are read
    with the month's, and count for the week but not for the quarter. A rep moved to West
    from 1 October keeps East's past calls in East."""
    reps, teams = _team_of_reps(tenant_a)
    today = dt.datetime(2026, 10, 1, 3, tzinfo=UTC)  # a Thursday; its week began 28 September
    with tenant_context(tenant_a):
        leads = [
            pipeline_services.lead_create(
                tenant=tenant_a, company=f"W{i}", created_at=dt.datetime(2026, 1, 5, tzinfo=UTC)
            )
            for i in range(3)
        ]
        _call(tenant_a, leads[0], reps[0], dt.datetime(2026, 9, 29, 3, tzinfo=UTC))
        _call(tenant_a, leads[1], reps[0], dt.datetime(2026, 8, 3, 3, tzinfo=UTC))
        _call(tenant_a, leads[2], reps[1], dt.datetime(2026, 9, 30, 3, tzinfo=UTC))
        kpi_snapshots_rebuild(tenant=tenant_a)
        kpi_snapshots_warm(tenant=tenant_a, today=today.date())
        team_history.member_team_move(
            membership=reps[0], team=teams[1], effective_from=dt.date(2026, 10, 1)
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        for lead in leads:
            _call(tenant_a, lead, reps[0], today)
        _refresh_and_compare(tenant_a)
        week = KpiSnapshot.objects.get(
            grain="week", period_start=dt.date(2026, 9, 28), scope_type="tenant", scope_key=""
        )
        assert week.leads_touched == 3


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_touches_over_a_year_refreshed_in_batches_match_a_rebuild(
    tenant_a: Any, seed: int
) -> None:
    rng = random.Random(seed)
    reps, teams = _team_of_reps(tenant_a)
    first = dt.datetime(2026, 2, 1, tzinfo=UTC)

    def moment(days: int = 300) -> dt.datetime:
        # 15:30 UTC is the next day in Tokyo.
        return first + dt.timedelta(days=rng.randrange(days), hours=rng.choice([3, 15.5]))

    with tenant_context(tenant_a):
        leads = [
            pipeline_services.lead_create(
                tenant=tenant_a,
                company=f"R{i}",
                source=["web", "event", ""][i % 3],
                created_at=first - dt.timedelta(days=7),
            )
            for i in range(10)
        ]
        for _ in range(60):
            _call(
                tenant_a,
                rng.choice(leads),
                rng.choice([*reps, None]),
                moment(),
                rng.choice(["call", "email", "meeting"]),
            )
        kpi_snapshots_rebuild(tenant=tenant_a)
        kpi_snapshots_warm(tenant=tenant_a, today=(first + dt.timedelta(days=300)).date())
        # a backdated move: rep 1 was in West from a day in the year
        team_history.member_team_move(
            membership=reps[1], team=teams[1], effective_from=moment().date()
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # when batches land on one or two days each, refreshed one batch at a time
        for batch in range(8):
            days = [moment() for _ in range(rng.choice([1, 2]))]
            for _ in range(rng.randrange(2, 8)):
                _call(
                    tenant_a,
                    rng.choice(leads),
                    rng.choice([*reps, None]),
                    rng.choice(days) + dt.timedelta(minutes=rng.randrange(60)),
                    rng.choice(["call", "call", "email", "meeting"]),
                )
            if batch < 7:
                kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then every stored row equals a rebuild's
        _refresh_and_compare(tenant_a)
