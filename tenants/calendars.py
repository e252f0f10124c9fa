"""Working days of a tenant: Monday to Friday minus its public holidays and its closures."""

from __future__ import annotations

import zoneinfo
from datetime import date, timedelta
from functools import lru_cache

import holidays

from tenants.business_hours import BusinessHours
from tenants.models import Tenant, TenantClosure


@lru_cache(maxsize=64)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    # NOTE: observed=True gives Japan's 振替休日 and the US observed dates of federal holidays;
    # Japan's 国民の休日 is part of the JP calendar itself.
    return frozenset(holidays.country_holidays(country, years=[year], observed=True))


def public_holidays(country: str, start: date, end: date) -> set[date]:
    """Public holidays of `country` in the dates [start, end)."""
    days: set[date] = set()
    for year in range(start.year, end.year + 1):
        days.update(day for day in _public_holidays(country, year) if start <= day < end)
    return days


def days_off(tenant: Tenant, start: date, end: date) -> set[date]:
    """Public holidays and tenant closures in [start, end) (weekends not included)."""
    closures = TenantClosure.objects.filter(date__gte=start, date__lt=end).values_list(
        "date", flat=True
    )
    return public_holidays(tenant.holiday_country, start, end) | set(closures)


def working_days(tenant: Tenant, start: date, end: date) -> list[date]:
    """The tenant's working days in [start, end), in order (one query for the closures)."""
    return _working(start, end, days_off(tenant, start, end))


def count_working_days(start: date, end: date, off: set[date]) -> int:
    """Weekdays in [start, end) that are not in `off` (no query: pass `days_off(...)`)."""
    return len(_working(start, end, off))


def _working(start: date, end: date, off: set[date]) -> list[date]:
    days = []
    day = start
    while day < end:
        if day.weekday() < 5 and day not in off:
            days.append(day)
        day += timedelta(days=1)
    return days


def business_hours_for(tenant: Tenant, start: date, end: date) -> BusinessHours:
    """The tenant's business hours with its days off in [start, end) (one query)."""
    return BusinessHours(
        zone=zoneinfo.ZoneInfo(tenant.timezone),
        off=frozenset(days_off(tenant, start, end)),
        opens=tenant.business_opens,
        closes=tenant.business_closes,
    )
