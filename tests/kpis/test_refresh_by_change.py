"""Refreshes that recompute only what changed on a day equal a rebuild.

A dirty day records which kinds of measures its writes can move and, when its activities
were only added, their ids. On PostgreSQL a refresh keeps the day's other stored measures,
and a day whose members are complete counts just the added activities.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from kpis.models import KpiMemberPeriod, KpiSnapshot
from kpis.snapshots import (
    kpi_snapshots_rebuild,
    kpi_snapshots_refresh_dirty,
    kpi_snapshots_warm,
    members_sql,
    refresh,
    writing,
)
from pipeline import services as pipeline_services
from pipeline.dirty import mark_activities_added
from pipeline.models import DealStage, DirtyDay, DirtyKind
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory
from tests.kpis.snapshot_rows import snapshot_diff, snapshot_table

UTC = dt.UTC
pytestmark = pytest.mark.django_db


def _reps(tenant: Any) -> list[Any]:
    """Two teams of two reps each, and a rep without a team."""
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    return [
        members.membership_add(
            tenant=tenant, user=UserFactory(username=f"rep{i}"), role=Role.REP, team=team
        )
        for i, team in enumerate((east, east, west, west, None))
    ]


def _assert_a_rebuild_agrees(tenant: Any) -> None:
    """The stored snapshot rows equal those a full rebuild computes (run in the context)."""
    incremental = snapshot_table()
    kpi_snapshots_rebuild(tenant=tenant)
    assert snapshot_diff(snapshot_table(), incremental) == []


class _Recorder:
    """Records what each day-offer of members_sql read: only the added ids, or None (the
    whole day)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.calls: list[tuple[Any, list[int] | None]] = []
        original = members_sql._offer

        def offer(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("day") is not None:
                whole = kwargs.get("whole", True)
                self.calls.append((kwargs["day"], None if whole else kwargs.get("added")))
            return original(*args, **kwargs)

        monkeypatch.setattr(members_sql, "_offer", offer)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_writes_refreshed_by_what_changed_match_a_rebuild(
    tenant_a: Any, seed: int, monkeypatch: Any
) -> None:
    rng = random.Random(seed)
    reps = _reps(tenant_a)
    recorder = _Recorder(monkeypatch)
    with tenant_context(tenant_a):
        leads = [
            pipeline_services.lead_create(
                tenant=tenant_a,
                company=f"C{i}",
                source=["web", "event", ""][i % 3],
                owner=reps[i % len(reps)],
                created_at=dt.datetime(2026, 3, 1, tzinfo=UTC),
            )
            for i in range(8)
        ]
        mql = set()
        deals: list[Any] = []
        moved: dict[int, dt.datetime] = {}

        def moment() -> dt.datetime:
            # Days across a month boundary; 15:30 UTC is the next day in Tokyo.
            day = dt.datetime(2026, 3, 30, tzinfo=UTC) + dt.timedelta(days=rng.randrange(4))
            return day + dt.timedelta(hours=rng.choice([3, 9, 15.5]))

        def write() -> None:
            roll = rng.random()
            if roll < 0.7:
                pipeline_services.activity_create(
                    tenant=tenant_a,
                    lead=rng.choice(leads),
                    rep=rng.choice([*reps, None]),
                    type=rng.choice(["call", "call", "email", "meeting"]),
                    call_outcome="",
                    occurred_at=moment(),
                )
            elif roll < 0.8:
                lead = rng.choice([lead for lead in leads if lead.pk not in mql] or leads)
                if lead.pk not in mql:
                    mql.add(lead.pk)
                    pipeline_services.lead_transition(lead=lead, to_stage="mql", at=moment())
            elif roll < 0.85:
                deals.append(
                    pipeline_services.deal_create(
                        tenant=tenant_a,
                        lead=rng.choice(leads),
                        amount=Decimal(rng.randrange(1, 50) * 1000),
                        created_at=moment(),
                    )
                )
            elif roll < 0.9 and deals:
                deal = rng.choice(deals)
                at = max(moment(), moved.get(deal.pk, deal.created_at))
                moved[deal.pk] = at
                stage = rng.choice(list(DealStage.objects.exclude(pk=deal.stage_id)))
                pipeline_services.deal_move_stage(deal=deal, stage=stage, at=at)
            elif roll < 0.93:
                # A lead changing source re-attributes its history: its days are rescanned.
                lead = rng.choice(leads)
                pipeline_services.lead_update(lead=lead, source=rng.choice(["web", "event", ""]))
            else:
                pipeline_services.lead_create(
                    tenant=tenant_a, company="Late", source="web", created_at=moment()
                )

        # given the days refreshed once (their members become complete)
        for _ in range(10):
            write()
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # when more writes of every kind land, each round refreshed by what changed
        for _ in range(6):
            for _ in range(rng.randrange(1, 8)):
                write()
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then a rebuild gives exactly the same snapshot rows
        _assert_a_rebuild_agrees(tenant_a)
    if connection.vendor == "postgresql":
        # and complete days counted just their added activities
        assert any(added is not None for _, added in recorder.calls)
        assert any(added is None for _, added in recorder.calls)


@pytest.mark.postgres
def test_a_day_of_added_activities_reads_only_them_and_keeps_its_other_measures(
    tenant_a: Any, monkeypatch: Any
) -> None:
    reps = _reps(tenant_a)
    recorder = _Recorder(monkeypatch)
    at = dt.datetime(2026, 4, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=at)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
        )
        pipeline_services.lead_transition(lead=lead, to_stage="mql", at=at)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # given a refreshed day; when a call by another rep of the team is added
        added = pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[1], type="call", occurred_at=at
        )
        dirty = DirtyDay.objects.get()
        assert (dirty.kinds, dirty.added_activities) == (DirtyKind.ACTIVITIES, [added.pk])
        recorder.calls.clear()
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then only that activity was read, and the day's counts are a rebuild's
        assert recorder.calls == [(at.date(), [added.pk])]
        day = KpiSnapshot.objects.get(grain="day", scope_type="tenant")
        assert (day.calls, day.leads_touched, day.active_reps, day.mqls) == (2, 1, 2, 1)
        team = KpiSnapshot.objects.get(
            grain="day", scope_type="team", scope_key=str(reps[0].team_id)
        )
        assert (team.leads_touched, team.active_reps) == (1, 2)
        _assert_a_rebuild_agrees(tenant_a)


@pytest.mark.postgres
def test_a_day_whose_members_are_not_complete_is_read_whole(
    tenant_a: Any, monkeypatch: Any
) -> None:
    reps = _reps(tenant_a)
    at = dt.datetime(2026, 4, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=at)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
        )
        # given a rebuild (which forgets every member) and a call added after it
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert not KpiMemberPeriod.objects.filter(grain="day").exists()
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
        )
        recorder = _Recorder(monkeypatch)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then the day was read whole, not counted from the added call alone
        assert recorder.calls == [(at.date(), None)]
        day = KpiSnapshot.objects.get(grain="day", scope_type="tenant")
        assert (day.calls, day.leads_touched, day.active_reps) == (2, 1, 1)
        assert KpiMemberPeriod.objects.filter(grain="day", period_start=at.date()).exists()


@pytest.mark.postgres
def test_a_day_of_other_changes_does_not_read_its_activities(
    tenant_a: Any, monkeypatch: Any
) -> None:
    reps = _reps(tenant_a)
    at = dt.datetime(2026, 4, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=at)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="email", occurred_at=at
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        pipeline_services.lead_transition(lead=lead, to_stage="mql", at=at)
        assert DirtyDay.objects.get().kinds == DirtyKind.TRANSITIONS
        recorder = _Recorder(monkeypatch)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        assert recorder.calls == []
        day = KpiSnapshot.objects.get(grain="day", scope_type="tenant")
        assert (day.emails_sent, day.leads_touched, day.mqls, day.leads_created) == (1, 1, 1, 1)
        _assert_a_rebuild_agrees(tenant_a)


@pytest.mark.postgres
def test_activities_added_while_a_rebuild_runs_are_recounted_not_added(
    tenant_a: Any, monkeypatch: Any
) -> None:
    """A write committed between the rebuild's statements may be in its counts already."""
    reps = _reps(tenant_a)
    at = dt.datetime(2026, 4, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=at)
        call = pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
        )
        DirtyDay.objects.all().delete()
        original = writing.write_periods

        def write_periods(*args: Any, **kwargs: Any) -> Any:
            # The call's mark lands after the rebuild deleted the dirty days, as a
            # concurrent ingestion's would.
            mark_activities_added(tenant=tenant_a, added=[(call.pk, at)], notify=False)
            return original(*args, **kwargs)

        monkeypatch.setattr(writing, "write_periods", write_periods)
        kpi_snapshots_rebuild(tenant=tenant_a)
        monkeypatch.undo()
        assert DirtyDay.objects.get().added_activities is None
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        day = KpiSnapshot.objects.get(grain="day", scope_type="tenant")
        assert (day.calls, day.leads_touched) == (1, 1)


@pytest.mark.postgres
def test_a_write_landing_during_the_warm_up_drops_the_members_it_may_be_in(
    tenant_a: Any, monkeypatch: Any
) -> None:
    from kpis.models import KpiMember

    reps = _reps(tenant_a)
    at = dt.datetime(2026, 4, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=at)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
        )
        kpi_snapshots_rebuild(tenant=tenant_a)
        original = members_sql.warm

        def warm(**kwargs: Any) -> int:
            # A call committed after the warm-up looked for dirty days, before it reads.
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=reps[1], type="call", occurred_at=at
            )
            return original(**kwargs)

        monkeypatch.setattr(members_sql, "warm", warm)
        kpi_snapshots_warm(tenant=tenant_a, today=dt.date(2026, 4, 3))
        assert not KpiMember.objects.filter(grain="day", period_start=at.date()).exists()
        assert not KpiMemberPeriod.objects.filter(
            grain="month", period_start=dt.date(2026, 4, 1)
        ).exists()
        monkeypatch.undo()
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        _assert_a_rebuild_agrees(tenant_a)


@pytest.mark.postgres
def test_activities_listed_by_a_day_left_for_the_next_refresh_are_not_taken_as_counted(
    tenant_a: Any,
) -> None:
    reps = _reps(tenant_a)
    first, second = (dt.datetime(2026, 4, day, 3, tzinfo=UTC) for day in (2, 3))
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=first)
        other = pipeline_services.lead_create(tenant=tenant_a, company="D", created_at=first)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=other, rep=reps[0], type="call", occurred_at=first
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # given a lead's first calls on two days of one week, each day listing its call
        for at in (first, second):
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=reps[1], type="call", occurred_at=at
            )
        # when the days are refreshed one per refresh
        assert kpi_snapshots_refresh_dirty(tenant=tenant_a, limit=1).days == 1
        assert kpi_snapshots_refresh_dirty(tenant=tenant_a, limit=1).days == 1
        # then the lead counts once in the week and month, as a rebuild says
        week = KpiSnapshot.objects.get(grain="week", scope_type="tenant")
        assert week.leads_touched == 2
        _assert_a_rebuild_agrees(tenant_a)


@pytest.mark.postgres
def test_a_refresh_listing_more_than_a_bulk_import_recounts_its_days(
    tenant_a: Any, monkeypatch: Any
) -> None:
    reps = _reps(tenant_a)
    monkeypatch.setattr(refresh, "MAX_LISTED_PER_REFRESH", 2)
    days = [dt.datetime(2026, 4, day, 3, tzinfo=UTC) for day in (2, 3, 4)]
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C", created_at=days[0])
        for at in days:
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=reps[0], type="call", occurred_at=at
            )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # given three days that list one added call each, more than the refresh takes listed
        for at in days:
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=reps[1], type="call", occurred_at=at
            )
        recorder = _Recorder(monkeypatch)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then every day was read whole and the numbers are a rebuild's
        assert recorder.calls == [(at.date(), None) for at in days]
        _assert_a_rebuild_agrees(tenant_a)
