"""Business time and deadlines in a tenant's business hours: weekends, holidays, evenings,
custom hours and daylight-saving changes."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

import pytest

from tenants.business_hours import BusinessHours, business_deadline, working_hours_between
from tenants.calendars import days_off
from tenants.errors import ValidationFailed
from tenants.services import tenant_update

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# 2026-11-23 (Mon) is 勤労感謝の日.
JP_OFF = {date(2026, 11, 23)}


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def test_business_time_across_a_weekend() -> None:
    # given Friday 17:00 to Monday 10:00 (no holiday)
    hours = BusinessHours(zone=TOKYO, off=set())
    # when / then: 1 hour on Friday, 1 on Monday
    assert hours.between(tokyo(2026, 11, 13, 17), tokyo(2026, 11, 16, 10)) == timedelta(hours=2)


def test_business_time_skips_a_japanese_holiday() -> None:
    hours = BusinessHours(zone=TOKYO, off=JP_OFF)
    # Friday 17:00 → Tuesday 10:00 over the weekend and Monday 2026-11-23
    assert hours.between(tokyo(2026, 11, 20, 17), tokyo(2026, 11, 24, 10)) == timedelta(hours=2)


def test_lead_arriving_friday_evening_starts_the_clock_monday_morning() -> None:
    hours = BusinessHours(zone=TOKYO, off=set())
    # given a lead at Friday 20:00 and a 4-hour SLA
    deadline = hours.deadline(tokyo(2026, 11, 13, 20), 4)
    # then the window runs Monday 09:00-13:00
    assert deadline == tokyo(2026, 11, 16, 13)
    assert hours.between(tokyo(2026, 11, 13, 20), tokyo(2026, 11, 16, 9)) == timedelta(0)


def test_deadline_ending_at_closing_time_stays_friday_18() -> None:
    hours = BusinessHours(zone=TOKYO, off=set())
    deadline = hours.deadline(tokyo(2026, 11, 13, 14), 4)
    assert deadline == tokyo(2026, 11, 13, 18)
    # no business time passes over the weekend: only after Monday 09:00 is it more than 4 h
    start = tokyo(2026, 11, 13, 14)
    assert hours.between(start, tokyo(2026, 11, 16, 9)) == timedelta(hours=4)
    assert hours.between(start, tokyo(2026, 11, 16, 9, 1)) > timedelta(hours=4)


def test_deadline_over_the_holiday_weekend() -> None:
    hours = BusinessHours(zone=TOKYO, off=JP_OFF)
    # 8 business hours from Friday 2026-11-20 14:00: 4 on Friday, 4 on Tuesday
    assert hours.deadline(tokyo(2026, 11, 20, 14), 8) == tokyo(2026, 11, 24, 13)


def test_custom_business_hours() -> None:
    hours = BusinessHours(zone=TOKYO, off=set(), opens=time(10, 0), closes=time(19, 30))
    assert hours.between(tokyo(2026, 11, 16, 0), tokyo(2026, 11, 17, 0)) == timedelta(
        hours=9, minutes=30
    )
    assert hours.deadline(tokyo(2026, 11, 16, 19), 1) == tokyo(2026, 11, 17, 10, 30)


def test_local_clock_time_across_daylight_saving() -> None:
    # given New York, which moves from EDT to EST on Sunday 2026-11-01
    friday = datetime(2026, 10, 30, 17, tzinfo=NEW_YORK)
    monday = datetime(2026, 11, 2, 10, tzinfo=NEW_YORK)
    # then business hours stay 09:00-18:00 local: 1 h Friday + 1 h Monday
    assert working_hours_between(friday, monday, zone=NEW_YORK, off=set()) == timedelta(hours=2)
    deadline = business_deadline(friday, 2, zone=NEW_YORK, off=set())
    assert deadline == datetime(2026, 11, 2, 10, tzinfo=NEW_YORK)
    assert deadline.astimezone(zoneinfo.ZoneInfo("UTC")).hour == 15  # EST: UTC-5


def test_instants_in_utc_give_the_same_answer() -> None:
    hours = BusinessHours(zone=TOKYO, off=set())
    utc = zoneinfo.ZoneInfo("UTC")
    start = tokyo(2026, 11, 13, 17).astimezone(utc)
    end = tokyo(2026, 11, 16, 10).astimezone(utc)
    assert hours.between(start, end) == timedelta(hours=2)


@pytest.mark.django_db
def test_tenant_business_hours_default_and_validation(tenant_a) -> None:
    # given the default hours
    assert (tenant_a.business_opens, tenant_a.business_closes) == (time(9), time(18))
    # when closing before opening
    with pytest.raises(ValidationFailed) as error:
        tenant_update(tenant=tenant_a, business_opens=time(18), business_closes=time(9))
    # then a typed error names the field and nothing changed
    assert error.value.field == "businessCloses"
    tenant_a.refresh_from_db()
    assert (tenant_a.business_opens, tenant_a.business_closes) == (time(9), time(18))
    updated = tenant_update(tenant=tenant_a, business_opens=time(8, 30))
    assert updated.business_opens == time(8, 30)


@pytest.mark.django_db
def test_days_off_include_the_japanese_holiday(tenant_a) -> None:
    from tenants.context import tenant_context

    with tenant_context(tenant_a):
        off = days_off(tenant_a, date(2026, 11, 1), date(2026, 12, 1))
    assert date(2026, 11, 23) in off


UPDATE = """
mutation ($input: UpdateTenantInput!) {
  updateTenant(input: $input) { tenant { businessOpens businessCloses } errors { code field } }
}
"""


@pytest.mark.django_db
def test_business_hours_over_graphql(graphql, admin_a, tenant_a) -> None:
    # when an admin sets 10:00-19:00
    _, body = graphql(
        UPDATE,
        {"input": {"businessOpens": "10:00:00", "businessCloses": "19:00:00"}},
        user=admin_a,
        tenant="acme",
    )
    assert body["data"]["updateTenant"] == {
        "tenant": {"businessOpens": "10:00:00", "businessCloses": "19:00:00"},
        "errors": [],
    }
    # then closing before opening is refused and changes nothing
    _, body = graphql(
        UPDATE, {"input": {"businessCloses": "08:00:00"}}, user=admin_a, tenant="acme"
    )
    assert body["data"]["updateTenant"]["errors"] == [
        {"code": "VALIDATION", "field": "businessCloses"}
    ]
    tenant_a.refresh_from_db()
    assert (tenant_a.business_opens, tenant_a.business_closes) == (time(10), time(19))
