"""What the snapshot passes share: the tenant's lock, day ranges, enclosing periods, the
days a tenant has data on, what a pass returns and what a write changed on a day, and
which failures a pass may go on after."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, connection

from kpis import failures, measure_store
from kpis.failures import FailedDay
from kpis.periods import COARSE_GRAINS, Period, period_containing
from kpis.versions import kpi_read_version_bump
from pipeline.models import Activity, Deal, DirtyKind, Lead, StageTransition
from tenants.models import Tenant


def lock_tenant(tenant: Tenant) -> None:
    """Serialise the tenant's snapshot writers; every one of them starts here, so this also
    bumps the tenant's KPI read version (now and on commit: kpis.versions)."""
    kpi_read_version_bump(tenant.pk)
    # TRICKY: two workers refreshing one tenant would each delete and insert the same rows;
    # a transaction-level advisory lock serialises them (the second then finds little left).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7_240_001, tenant.pk])


# Consecutive runs of days as half-open [start, end) ranges.
day_ranges = measure_store.day_ranges


def enclosing_periods(days: Iterable[date], fiscal_start: int) -> list[Period]:
    periods = {
        period_containing(grain, day, fiscal_start) for day in days for grain in COARSE_GRAINS
    }
    return sorted(periods, key=lambda p: (COARSE_GRAINS.index(p.grain), p.start))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def data_day_range(*, tenant: Tenant) -> tuple[date, date] | None:
    """The tenant-local dates [first, last + 1) that hold any pipeline row, within the
    supported range (rows outside it are never computed: see kpis.failures)."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    lo, hi = failures.supported_instants(zone)
    instants = []
    for model, fields in (
        (Activity, ("occurred_at",)),
        (Lead, ("created_at",)),
        (StageTransition, ("at",)),
        (Deal, ("created_at", "closed_at")),
    ):
        for field in fields:
            # NOTE: a range on the indexed timestamp, as the isnull test was: same plan.
            first = model.objects.order_by(field).filter(
                **{f"{field}__gte": lo, f"{field}__lt": hi}
            )
            low = first.values_list(field, flat=True).first()
            high = first.order_by(f"-{field}").values_list(field, flat=True).first()
            instants.extend(moment for moment in (low, high) if moment is not None)
    if not instants:
        return None
    days = [moment.astimezone(zone).date() for moment in instants]
    return min(days), max(days) + timedelta(days=1)


@dataclass(frozen=True)
class RefreshResult:
    days: int
    periods: int
    rows: int
    seconds: float
    # Days that could not be computed: kept dirty with the reason, retried later.
    failed: tuple[FailedDay, ...] = ()
    # Snapshot rows a rebuild inserted, updated or deleted (None: not counted apart from
    # `rows`, the rows computed).
    written: int | None = None


@dataclass(frozen=True)
class DayChange:
    """What the writes to a dirty day changed (see DirtyDay): the kinds of measures they can
    move, and the activities they only added (None: recount the day's activities)."""

    kinds: int = DirtyKind.ALL
    added_activities: tuple[int, ...] | None = None


def recoverable(error: Exception) -> bool:
    """Whether a failed refresh may go on with other days: not when the task ran out of
    time or the connection is gone (every further statement would fail too)."""
    if isinstance(error, SoftTimeLimitExceeded | InterfaceError):
        return False
    return connection.is_usable()
