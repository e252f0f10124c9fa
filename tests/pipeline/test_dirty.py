"""Dirty days: writes mark the tenant-local days they touch, once each."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.dirty import mark_days_dirty
from pipeline.models import DirtyDay
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
