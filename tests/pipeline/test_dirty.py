"""Dirty days: writes mark the tenant-local days they touch, once each."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.dirty import mark_activities_added, mark_days_dirty
from pipeline.models import DealStage, DirtyDay, DirtyKind
from tenants.context import tenant_context
from tests.factories import TenantFactory


def _days(tenant):
    with tenant_context(tenant):
        return list(DirtyDay.objects.order_by("day").values_list("day", flat=True))


def test_days_are_taken_in_the_tenant_timezone(tenant_a):
    # given a Tokyo tenant and a New York tenant
    new_york = TenantFactory(slug="ny", timezone="America/New_York")
    moment = dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)  # 4/1 01:30 JST, 3/31 12:30 EDT
    # when the same instant is marked for both
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[moment])
    with tenant_context(new_york):
        mark_days_dirty(tenant=new_york, datetimes=[moment])
    # then each gets its own local day
    assert _days(tenant_a) == [dt.date(2025, 4, 1)]
    assert _days(new_york) == [dt.date(2025, 3, 31)]


def test_marking_twice_keeps_one_row_per_day(tenant_a):
    day_one = dt.datetime(2025, 4, 1, 1, tzinfo=dt.UTC)
    day_two = dt.datetime(2025, 4, 2, 1, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[day_one, day_one, None])
        mark_days_dirty(tenant=tenant_a, datetimes=[day_one, day_two])
    assert _days(tenant_a) == [dt.date(2025, 4, 1), dt.date(2025, 4, 2)]


def test_naive_datetimes_are_refused(tenant_a):
    with tenant_context(tenant_a), pytest.raises(ValueError):
        mark_days_dirty(tenant=tenant_a, datetimes=[dt.datetime(2025, 4, 1, 1)])
    assert _days(tenant_a) == []


def test_a_rescan_mark_upgrades_a_day_already_dirty_and_never_downgrades(tenant_a):
    moment = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[moment])
        mark_days_dirty(tenant=tenant_a, datetimes=[moment], rescan=True)
        mark_days_dirty(tenant=tenant_a, datetimes=[moment])
        assert list(DirtyDay.objects.values_list("day", "rescan")) == [(dt.date(2025, 4, 1), True)]


def test_changing_a_leads_source_marks_every_day_of_its_history_for_a_recount(tenant_a):
    from pipeline import services

    with tenant_context(tenant_a):
        lead = services.lead_create(
            tenant=tenant_a,
            company="A社",
            source="web",
            created_at=dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC),
        )
        for day in (2, 9):
            services.activity_create(
                tenant=tenant_a,
                lead=lead,
                type="call",
                occurred_at=dt.datetime(2025, 4, day, 3, tzinfo=dt.UTC),
            )
        DirtyDay.objects.all().delete()
        # when only its score changes, only its creation day is marked, without a recount
        services.lead_update(lead=lead, score=5)
        assert list(DirtyDay.objects.values_list("day", "rescan")) == [(dt.date(2025, 4, 1), False)]
        DirtyDay.objects.all().delete()
        # when its source changes, every day of its history is marked for a recount
        services.lead_update(lead=lead, source="event")
        assert sorted(DirtyDay.objects.values_list("day", "rescan")) == [
            (dt.date(2025, 4, 1), True),
            (dt.date(2025, 4, 2), True),
            (dt.date(2025, 4, 9), True),
        ]


def _marks(tenant):
    with tenant_context(tenant):
        return list(
            DirtyDay.objects.order_by("day").values_list(
                "day", "kinds", "added_activities", "rescan"
            )
        )


APRIL_1 = dt.date(2025, 4, 1)


def test_added_activities_are_listed_and_merge_with_other_kinds(tenant_a):
    moment = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    a, t = DirtyKind.ACTIVITIES, DirtyKind.TRANSITIONS
    with tenant_context(tenant_a):
        # given activities added twice on a day
        mark_activities_added(tenant=tenant_a, added=[(7, moment), (8, moment)])
        mark_activities_added(tenant=tenant_a, added=[(9, moment)])
        assert _marks(tenant_a) == [(APRIL_1, a, [7, 8, 9], False)]
        # when a transition lands on it too, the list stays
        mark_days_dirty(tenant=tenant_a, datetimes=[moment], kinds=t)
        assert _marks(tenant_a) == [(APRIL_1, a | t, [7, 8, 9], False)]
        # when a write of unknown effect lands, the day's activities are recounted
        mark_days_dirty(tenant=tenant_a, datetimes=[moment])
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.ALL, None, False)]
        # and adding more after that does not bring a list back
        mark_activities_added(tenant=tenant_a, added=[(10, moment)])
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.ALL, None, False)]


def test_a_day_of_other_kinds_lists_no_activities_until_some_are_added(tenant_a):
    moment = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[moment], kinds=DirtyKind.DEALS)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.DEALS, [], False)]
        mark_activities_added(tenant=tenant_a, added=[(3, moment)])
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.DEALS | DirtyKind.ACTIVITIES, [3], False)]


def test_a_rescan_or_a_list_past_the_cap_recounts_the_days_activities(tenant_a, monkeypatch):
    from pipeline import dirty

    monkeypatch.setattr(dirty, "ADDED_ACTIVITIES_CAP", 3)
    day_one = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    day_two = dt.datetime(2025, 4, 2, 3, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        mark_activities_added(tenant=tenant_a, added=[(1, day_one), (2, day_one)])
        mark_activities_added(tenant=tenant_a, added=[(3, day_one), (4, day_one)])
        mark_activities_added(tenant=tenant_a, added=[(n, day_two) for n in range(5, 9)])
        assert [m[2] for m in _marks(tenant_a)] == [None, None]
        DirtyDay.objects.all().delete()
        mark_activities_added(tenant=tenant_a, added=[(1, day_one)])
        mark_days_dirty(tenant=tenant_a, datetimes=[day_one], rescan=True)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.ALL, None, True)]


def test_marks_are_per_tenant(tenant_a):
    other = TenantFactory(slug="other")
    moment = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        mark_activities_added(tenant=tenant_a, added=[(1, moment)])
    with tenant_context(other):
        mark_activities_added(tenant=other, added=[(2, moment)])
    assert _marks(tenant_a) == [(APRIL_1, DirtyKind.ACTIVITIES, [1], False)]
    assert _marks(other) == [(APRIL_1, DirtyKind.ACTIVITIES, [2], False)]


def test_each_write_marks_the_kinds_it_can_move(tenant_a):
    from decimal import Decimal

    from pipeline import services

    moment = dt.datetime(2025, 4, 1, 3, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        lead = services.lead_create(tenant=tenant_a, company="A", created_at=moment)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.LEADS, [], False)]
        DirtyDay.objects.all().delete()
        call = services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=moment)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.ACTIVITIES, [call.pk], False)]
        DirtyDay.objects.all().delete()
        services.lead_transition(lead=lead, to_stage="mql", at=moment)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.TRANSITIONS, [], False)]
        DirtyDay.objects.all().delete()
        deal = services.deal_create(
            tenant=tenant_a, lead=lead, amount=Decimal(5), created_at=moment
        )
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.DEALS, [], False)]
        DirtyDay.objects.all().delete()
        stage = DealStage.objects.exclude(pk=deal.stage_id).first()
        services.deal_move_stage(deal=deal, stage=stage, at=moment)
        assert _marks(tenant_a) == [(APRIL_1, DirtyKind.DEALS, [], False)]


def test_ingestion_lists_new_activities_and_rescans_changed_ones(tenant_a):
    from pipeline.ingestion import records_ingest
    from pipeline.models import Activity

    def batch(at: str) -> dict:
        return {
            "source_system": "dialer",
            "leads": [{"external_id": "L1", "company": "A", "created_at": "2025-03-30T12:00:00Z"}],
            "activities": [
                {"external_id": "A1", "lead_external_id": "L1", "type": "call", "occurred_at": at},
                {"external_id": "A2", "lead_external_id": "L1", "type": "email",
                 "occurred_at": "2025-04-01T03:00:00Z"},
            ],
        }  # fmt: skip

    with tenant_context(tenant_a):
        records_ingest(tenant=tenant_a, batch=batch("2025-04-01T01:00:00Z"), actor_label="t")
        ids = sorted(Activity.objects.values_list("pk", flat=True))
        assert _marks(tenant_a) == [
            (dt.date(2025, 3, 30), DirtyKind.LEADS, [], False),
            (APRIL_1, DirtyKind.ACTIVITIES, ids, False),
        ]
        DirtyDay.objects.all().delete()
        # when the same batch comes again, nothing is marked
        records_ingest(tenant=tenant_a, batch=batch("2025-04-01T01:00:00Z"), actor_label="t")
        assert _marks(tenant_a) == []
        # when one activity moves to another day, both days recount their activities
        records_ingest(tenant=tenant_a, batch=batch("2025-04-02T01:00:00Z"), actor_label="t")
        assert _marks(tenant_a) == [
            (APRIL_1, DirtyKind.ALL, None, True),
            (dt.date(2025, 4, 2), DirtyKind.ALL, None, True),
        ]
