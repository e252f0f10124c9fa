"""Snapshots against an independent reference: every KPI, every grain, each scope."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from kpis.catalogue import BUILTIN_KPIS
from kpis.models import KpiSnapshot
from kpis.periods import Grain, periods_overlapping
from kpis.scopes import KpiScope
from kpis.selectors import kpi_values
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from pipeline import services as pipeline_services
from pipeline.demo import seed_demo
from pipeline.models import DirtyDay, Lead
from tenants.context import tenant_context
from tenants.models import Membership, Team
from tests.kpis import expected

# The window crosses the fiscal-year start (April), Golden Week with its substitute holiday
# (2026-05-06) and several month ends.
TODAY = dt.date(2026, 5, 20)

# "__all__": seed_demo writes through the owner connection when it is a superuser.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _scopes(tenant: Any) -> list[KpiScope]:
    with tenant_context(tenant):
        teams = [KpiScope.team(pk) for pk in Team.objects.values_list("pk", flat=True)]
        reps = [KpiScope.rep(pk) for pk in Membership.objects.values_list("pk", flat=True)]
        sources = sorted(set(Lead.objects.values_list("source", flat=True)))
    return [KpiScope.tenant(), *teams, *reps, *(KpiScope.source(s) for s in sources)]


def _assert_matches_reference(tenant: Any, grains: tuple[str, ...], scopes: list[KpiScope]) -> int:
    checked = 0
    with tenant_context(tenant):
        raw = expected.load(tenant)
        for grain in grains:
            periods = periods_overlapping(
                grain, dt.date(2026, 2, 16), TODAY + dt.timedelta(days=1), 4
            )
            values = kpi_values(tenant=tenant, kpis=BUILTIN_KPIS, periods=periods, scopes=scopes)
            for period in periods:
                for scope in scopes:
                    reference = expected.measures(raw, period, scope)
                    for kpi in BUILTIN_KPIS:
                        got = values[(kpi.key, period, scope)]
                        if kpi.denominator is None:
                            want = Decimal(reference[kpi.numerator])
                        else:
                            want = expected.ratio(
                                reference[kpi.numerator],
                                reference[kpi.denominator],
                                multiplier=kpi.multiplier,
                            )
                        assert got.value == want, (kpi.key, period.label, scope)
                        checked += 1
    return checked


@pytest.fixture
def seeded(tenant_a: Any) -> Any:
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=TODAY)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    return tenant_a


def test_rebuild_matches_reference_for_every_kpi_coarse_grain_and_scope(seeded: Any) -> None:
    # given a rebuilt demo tenant
    scopes = _scopes(seeded)
    # when / then: weeks, months, fiscal quarters and years, for every scope
    checked = _assert_matches_reference(
        seeded, (Grain.WEEK, Grain.MONTH, Grain.QUARTER, Grain.YEAR), scopes
    )
    assert checked > 1000


def test_rebuild_matches_reference_for_every_day(seeded: Any) -> None:
    scopes = _scopes(seeded)[:4]  # the tenant, its team(s) and a rep: days are many
    _assert_matches_reference(seeded, (Grain.DAY,), scopes)


def test_rebuild_reading_on_a_side_connection_matches_reference_and_one_connection(
    seeded: Any, tenant_b: Any
) -> None:
    """The leads, transitions and deals read on a second connection (PostgreSQL) give the
    same rows as one connection, in the tenant's own context: another tenant's demo data,
    seeded alike, must not leak in."""
    # given another tenant with its own demo data, and the one-connection rebuild's rows
    seed_demo(tenant_slug="globex", leads=120, months=3, seed=5, today=TODAY)
    with tenant_context(seeded):
        one_connection = _snapshot_table()
        # when the tenant is rebuilt with the side connection, as the task does
        result = kpi_snapshots_rebuild(tenant=seeded, side_connection=True)
        # then the rows are the same, and they match the reference
        assert result.rows == len(one_connection)
        assert _snapshot_table() == one_connection
    scopes = _scopes(seeded)
    _assert_matches_reference(seeded, (Grain.MONTH, Grain.YEAR), scopes)
    _assert_matches_reference(seeded, (Grain.DAY,), scopes[:2])


@pytest.mark.postgres
def test_a_failed_side_read_is_redone_day_by_day_with_the_same_rows(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kpis.snapshots import measuring

    with tenant_context(seeded):
        before = _snapshot_table()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("side connection lost")

    # when the set-based pass fails (its side read), which the day-by-day refreshes never use
    monkeypatch.setattr(measuring, "other_measures", failing)
    with tenant_context(seeded):
        result = kpi_snapshots_rebuild(tenant=seeded, side_connection=True)
    # then the rebuild redone as refreshes of every day with data gives the very same rows
    assert result.failed == ()
    with tenant_context(seeded):
        assert _snapshot_table() == before
        assert not DirtyDay.objects.exists()


def test_a_rebuild_redone_day_by_day_gives_the_same_rows_as_the_set_based_pass(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kpis.snapshots import rebuild

    with tenant_context(seeded):
        before = _snapshot_table()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("set-based pass failed")

    # when the set-based pass fails (on both databases)
    monkeypatch.setattr(rebuild, "_rebuild", failing)
    with tenant_context(seeded):
        result = kpi_snapshots_rebuild(tenant=seeded)
    # then every day with data is refreshed from scratch, into the very same rows
    assert result.failed == ()
    with tenant_context(seeded):
        zone = zoneinfo.ZoneInfo(seeded.timezone)
        assert result.days == len(rebuild._data_days(seeded, zone)) == 57
        assert _snapshot_table() == before
        assert not DirtyDay.objects.exists()


@pytest.mark.postgres
def test_a_rebuild_whose_side_connection_cannot_connect_reads_on_one(
    seeded: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from django.db import OperationalError

    from kpis.snapshots import measuring, rebuild

    with tenant_context(seeded):
        one_connection = _snapshot_table()
    original = measuring.other_measures

    def refused_on_the_side(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            raise OperationalError("too many clients already")
        return original(*args, **kwargs)

    monkeypatch.setattr(measuring, "other_measures", refused_on_the_side)
    # NOTE: the logger's own level: an embedded Celery worker started by an earlier test
    # leaves the root logger at ERROR, which the warning would inherit.
    with (
        tenant_context(seeded),
        caplog.at_level(logging.WARNING, logger=rebuild.logger.name),
    ):
        kpi_snapshots_rebuild(tenant=seeded, side_connection=True)
        assert _snapshot_table() == one_connection
    assert "side connection failed" in caplog.text


def test_incremental_refresh_equals_rebuild(seeded: Any) -> None:
    # given a rebuilt tenant and new rows on one day, including a reassigned activity
    with tenant_context(seeded):
        lead = Lead.objects.order_by("pk").first()
        rep = Membership.objects.order_by("pk").first()
        at = dt.datetime(2026, 3, 31, 14, 30, tzinfo=dt.UTC)  # 23:30 JST on the FY's last day
        for _ in range(3):
            pipeline_services.activity_create(
                tenant=seeded,
                lead=lead,
                rep=rep,
                type="call",
                occurred_at=at,
                call_outcome="connected",
            )
        assert DirtyDay.objects.filter(day=dt.date(2026, 3, 31)).exists()
        # when the dirty days are refreshed
        result = kpi_snapshots_refresh_dirty(tenant=seeded)
        incremental = _snapshot_table()
        # then nothing is dirty and a rebuild gives the same rows
        assert result.days == 1
        assert not DirtyDay.objects.exists()
        kpi_snapshots_rebuild(tenant=seeded)
        assert _snapshot_table() == incremental


def _snapshot_table() -> dict[tuple, tuple]:
    columns = [
        f.name for f in KpiSnapshot._meta.concrete_fields if f.name not in {"id", "computed_at"}
    ]
    return {
        (row[1], row[2], row[4], row[5]): row for row in KpiSnapshot.objects.values_list(*columns)
    }


def test_refresh_of_deal_days_moves_the_periods_exactly_as_a_rebuild(seeded: Any) -> None:
    """A refresh moves each enclosing period by its days' change (money and stock included)."""
    from pipeline.models import DealStage

    with tenant_context(seeded):
        lead = Lead.objects.order_by("-pk").first()
        stages = list(DealStage.objects.order_by("order"))
        open_stages = [s for s in stages if not s.is_won and not s.is_lost and s.win_probability]
        won = next(s for s in stages if s.is_won)
        # given a rebuilt tenant, a deal created on one day, advanced on another and won on a
        # third (the first two in March, the win in FY2026's first month)
        created = dt.datetime(2026, 3, 10, 1, tzinfo=dt.UTC)
        deal = pipeline_services.deal_create(
            tenant=seeded,
            lead=lead,
            amount=Decimal("1234.56"),
            stage=open_stages[0],
            created_at=created,
        )
        deal = pipeline_services.deal_move_stage(
            deal=deal, stage=open_stages[-1], at=created + dt.timedelta(days=9)
        )
        pipeline_services.deal_move_stage(
            deal=deal, stage=won, at=dt.datetime(2026, 4, 2, 5, tzinfo=dt.UTC)
        )
        assert DirtyDay.objects.count() >= 3
        # when the dirty days are refreshed
        kpi_snapshots_refresh_dirty(tenant=seeded)
        incremental = _snapshot_table()
        # then a rebuild gives exactly the same rows, coarse periods included
        kpi_snapshots_rebuild(tenant=seeded)
        assert _snapshot_table() == incremental
        march = KpiSnapshot.objects.get(
            grain=Grain.MONTH, period_start=dt.date(2026, 3, 1), scope_type="tenant"
        )
        assert march.weighted_pipeline_change != 0
