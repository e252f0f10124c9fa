"""The PostgreSQL fast paths against their portable ORM twins on the same demo tenant."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from kpis import aggregates
from kpis.snapshots import daily_sql
from pipeline.demo import seed_demo
from pipeline.models import DealStageChange
from tenants.context import tenant_context
from tests.tenants.rls_helpers import every_row_visible_to_the_app_role

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

TODAY = dt.date(2026, 5, 20)


def _nonzero(rows: aggregates.Rows) -> aggregates.Rows:
    return {key: values for key, values in rows.items() if any(values.values())}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 1, 1), dt.date(2026, 6, 1)),  # a rebuild's range
        (dt.date(2026, 4, 1), dt.date(2026, 4, 2)),  # a refresh's day
        (dt.date(2026, 3, 30), dt.date(2026, 4, 6)),  # a week across the fiscal-year start
    ],
)
@pytest.mark.parametrize("probe_range_days", [daily_sql.PROBE_RANGE_DAYS, 0, 10_000])
def test_sql_weighted_pipeline_equals_the_portable_one(
    tenant_a: Any, start: dt.date, end: dt.date, probe_range_days: int, monkeypatch: Any
) -> None:
    # given a demo tenant whose deals move through stages, and each statement form for
    # every range (0: whole sets joined by hash; 10,000: deals probed one by one)
    monkeypatch.setattr(daily_sql, "PROBE_RANGE_DAYS", probe_range_days)
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=TODAY)
    zone = zoneinfo.ZoneInfo(tenant_a.timezone)
    with tenant_context(tenant_a):
        assert DealStageChange.objects.exists()
        # when both versions compute the day changes of the range
        portable: aggregates.Rows = {}
        aggregates.weighted_pipeline_changes(portable, start=start, end=end, zone=zone)
        sql: aggregates.Rows = {}
        daily_sql.weighted_pipeline_changes(
            sql, tenant_id=tenant_a.pk, start=start, end=end, zone=zone
        )
    # then they are equal, scope by scope and day by day
    assert _nonzero(sql) == _nonzero(portable)
    if end - start > dt.timedelta(days=30):
        assert len(_nonzero(sql)) > 10


def test_sql_weighted_pipeline_reads_only_its_tenant_even_when_every_row_is_visible(
    tenant_a: Any, tenant_b: Any
) -> None:
    # given two demo tenants with deals in the same months
    seed_demo(tenant_slug="acme", leads=120, months=2, seed=11, today=TODAY)
    seed_demo(tenant_slug="globex", leads=120, months=2, seed=12, today=TODAY)
    zone = zoneinfo.ZoneInfo(tenant_a.timezone)
    start, end = dt.date(2026, 3, 1), dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        scoped: aggregates.Rows = {}
        daily_sql.weighted_pipeline_changes(
            scoped, tenant_id=tenant_a.pk, start=start, end=end, zone=zone
        )
    # when the statement runs where row security lets every tenant's rows through
    with every_row_visible_to_the_app_role(), tenant_context(tenant_b):
        unscoped: aggregates.Rows = {}
        daily_sql.weighted_pipeline_changes(
            unscoped, tenant_id=tenant_a.pk, start=start, end=end, zone=zone
        )
    # then its own filters keep the other tenant out
    assert _nonzero(scoped)
    assert _nonzero(unscoped) == _nonzero(scoped)
