"""Scheduling ahead of refreshes: the membership rows of the open periods, built before the
first refresh after a rebuild needs them."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from kpis import failures
from kpis.periods import Grain, period_containing
from kpis.snapshots import members_sql
from kpis.snapshots.common import data_day_range, enclosing_periods, is_postgres, lock_tenant
from pipeline.models import DirtyDay
from tenants.models import Tenant


def _warm_days(anchors: Iterable[date], fiscal_start: int) -> list[date]:
    """The days a late write most likely lands on: from the start of each anchor's month
    (or of its week, when that starts earlier) through the anchor."""
    days: set[date] = set()
    for anchor in anchors:
        first = min(
            period_containing(Grain.MONTH, anchor, fiscal_start).start,
            period_containing(Grain.WEEK, anchor, fiscal_start).start,
        )
        days.update(first + timedelta(days=n) for n in range((anchor - first).days + 1))
    return sorted(days)


def kpi_snapshots_warm(*, tenant: Tenant, today: date | None = None) -> int:
    """Build the membership rows of the open periods (those containing today and the latest
    day with data, and every week of their months), and the members of each of their days
    so far, so the first refresh of such a day after a rebuild is as fast as the next ones.

    Periods and days with a pending refresh are left to it: their raw rows may be newer
    than the stored snapshot, whose counts the refresh moves by what is new to them.
    Returns how many periods were built. PostgreSQL only (a no-op elsewhere).
    """
    if not is_postgres():
        return 0
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    today = today or timezone.now().astimezone(zone).date()
    span = data_day_range(tenant=tenant)
    anchors = {today} | ({span[1] - timedelta(days=1)} if span else set())
    fiscal_start = tenant.fiscal_year_start_month
    days = _warm_days(anchors, fiscal_start)
    with transaction.atomic():
        lock_tenant(tenant)
        dirty = set(DirtyDay.objects.values_list("day", flat=True))
        # Days outside the supported range have no periods (and hold no snapshot).
        pending = set(enclosing_periods(filter(failures.is_supported, dirty), fiscal_start))
        periods = [p for p in enclosing_periods(days, fiscal_start) if p not in pending]
        days = [day for day in days if day not in dirty]
        built = members_sql.warm(tenant_id=tenant.pk, periods=periods, days=days, zone=zone)
        # TRICKY: a write committed while the members were read may be in them but not in
        # the stored counts; the days it marked, and their periods, drop their members and
        # are built again from raw rows by their refresh.
        late = set(filter(failures.is_supported, DirtyDay.objects.values_list("day", flat=True)))
        late -= dirty
        if late:
            members_sql.forget(periods=enclosing_periods(late, fiscal_start), days=late)
        return built
