"""Funnels kept under the data's version (kpis.funnel_store, kpis.data_generations): served from the
cache only while nothing they read changed, always equal to the funnel of the raw rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import data_generations, funnels
from kpis.funnels import FunnelBreakdown, FunnelMode, funnel_compute
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.snapshots import kpi_snapshots_refresh_dirty
from pipeline import services
from pipeline.lifecycle import Stage
from tenants.context import tenant_context
from tenants.errors import ValidationFailed
from tenants.team_history import member_team_move

TOKYO = ZoneInfo("Asia/Tokyo")
APRIL = parse_period("2025-04")


def jst(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, 4, day, hour, tzinfo=TOKYO)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


def lead(tenant: Any, *, created: dt.datetime, owner: Any = None, path=()) -> Any:
    """A lead made as ingestion makes it (its days marked dirty), moved along `path`."""
    made = services.lead_create(tenant=tenant, company="Co", created_at=created, owner=owner)
    for stage, at in path:
        services.lead_transition(lead=made, to_stage=stage, at=at)
    return made


def refresh(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)


def counts(result: funnels.FunnelResult, group: int = 0) -> dict[str, int]:
    return {step.stage: step.count for step in result.groups[group].steps}


def uncached(tenant: Any, **kwargs: Any) -> funnels.FunnelResult:
    """The funnel of the raw rows, the cache neither read nor written."""
    cache.clear()
    original = data_generations.data_version
    try:
        data_generations.data_version = lambda **_: None  # type: ignore[assignment]
        return funnel_compute(tenant=tenant, **kwargs)
    finally:
        data_generations.data_version = original  # type: ignore[assignment]


@pytest.fixture
def april(tenant_a: Any, rita: Any) -> dict[str, Any]:
    """Two April leads of rita's: one to sql (mql after 1 h, sql a day later), one to mql."""
    first = lead(
        tenant_a,
        created=jst(1),
        owner=rita,
        path=((Stage.MQL, jst(1, 11)), (Stage.SQL, jst(2, 11))),
    )
    second = lead(tenant_a, created=jst(5), owner=rita, path=((Stage.MQL, jst(5, 13)),))
    return {"first": first, "second": second}


def test_a_refreshed_funnel_is_kept_and_served_until_a_transition_changes_it(
    tenant_a: Any, april: dict[str, Any]
) -> None:
    # given the April leads, not yet refreshed: no version, the funnel is the raw rows'
    with tenant_context(tenant_a):
        assert data_generations.data_version(tenant=tenant_a, kinds=funnels.FUNNEL_DATA) is None
    before = funnel_compute(tenant=tenant_a, period=APRIL)
    assert counts(before) == {
        "lead": 2,
        "mql": 2,
        "sql": 1,
        "meeting": 0,
        "opportunity": 0,
        "won": 0,
    }

    # when the refresh clears the marks, the funnel is computed once and then kept
    refresh(tenant_a)
    first = funnel_compute(tenant=tenant_a, period=APRIL)
    with CaptureQueriesContext(connection) as queries:
        kept = funnel_compute(tenant=tenant_a, period=APRIL)
    # then the second read asks only the version: no lead or transition is read
    assert kept == first == before
    sqls = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in sqls if "pipeline_stagetransition" in sql or "pipeline_lead" in sql]
    assert kept.groups[0].steps[1].median_seconds_from_previous == Decimal(3600 + 3 * 3600) / 2

    # when the second lead reaches sql (a new transition, marked dirty)
    services.lead_transition(lead=april["second"], to_stage=Stage.SQL, at=jst(6, 13))
    # then the funnel shows it at once (computed from the raw rows, not kept)
    with tenant_context(tenant_a):
        assert data_generations.data_version(tenant=tenant_a, kinds=funnels.FUNNEL_DATA) is None
    moved = funnel_compute(tenant=tenant_a, period=APRIL)
    assert counts(moved)["sql"] == 2
    assert moved.groups[0].steps[2].median_seconds_from_previous == Decimal(86400)
    # and after its refresh, the new numbers are the ones kept
    refresh(tenant_a)
    assert funnel_compute(tenant=tenant_a, period=APRIL) == moved
    assert funnel_compute(tenant=tenant_a, period=APRIL) == uncached(tenant_a, period=APRIL)


def test_every_mode_scope_breakdown_and_comparison_equals_the_raw_rows(
    tenant_a: Any, april: dict[str, Any], rita: Any, east: Any
) -> None:
    refresh(tenant_a)
    cases = [
        {"mode": mode, "scope": scope, "breakdown": breakdown}
        for mode in FunnelMode
        for scope in (KpiScope.tenant(), KpiScope.team(east.pk), KpiScope.rep(rita.pk))
        for breakdown in (None, *FunnelBreakdown)
    ]
    for case in cases:
        args = {"period": APRIL, "comparison_period": APRIL.previous(), **case}
        raw = uncached(tenant_a, **args)
        computed = funnel_compute(tenant=tenant_a, **args)  # kept
        served = funnel_compute(tenant=tenant_a, **args)  # served from the cache
        assert served == computed == raw, case


def test_another_tenant_never_gets_a_kept_funnel(
    tenant_a: Any, tenant_b: Any, april: dict[str, Any]
) -> None:
    # given both tenants refreshed, B with one April lead only
    lead(tenant_b, created=jst(3))
    refresh(tenant_a)
    refresh(tenant_b)
    # when A's funnel is kept, then B's is B's own
    assert counts(funnel_compute(tenant=tenant_a, period=APRIL))["lead"] == 2
    assert counts(funnel_compute(tenant=tenant_b, period=APRIL)) == {
        "lead": 1, "mql": 0, "sql": 0, "meeting": 0, "opportunity": 0, "won": 0,
    }  # fmt: skip
    assert counts(funnel_compute(tenant=tenant_a, period=APRIL))["lead"] == 2


def test_a_team_move_is_shown_at_once_and_labels_follow_renames(
    tenant_a: Any, april: dict[str, Any], rita: Any, east: Any, west: Any
) -> None:
    refresh(tenant_a)
    by_team = {"period": APRIL, "breakdown": FunnelBreakdown.TEAM}
    kept = funnel_compute(tenant=tenant_a, **by_team)
    assert [(group.label, counts(kept, i)["lead"]) for i, group in enumerate(kept.groups)] == [
        ("IS East", 2)
    ]
    # when rita moves to West from April 1st (backdated): her days are marked for a recount
    member_team_move(membership=rita, team=west, effective_from=APRIL.start)
    with tenant_context(tenant_a):
        assert data_generations.data_version(tenant=tenant_a, kinds=funnels.FUNNEL_DATA) is None
    # then the period funnel of West holds her leads created, East none
    west_funnel = funnel_compute(tenant=tenant_a, period=APRIL, scope=KpiScope.team(west.pk))
    assert counts(west_funnel)["lead"] == 2
    east_funnel = funnel_compute(tenant=tenant_a, period=APRIL, scope=KpiScope.team(east.pk))
    assert counts(east_funnel)["lead"] == 0
    # and after the refresh of the marked days the same numbers are kept
    refresh(tenant_a)
    with tenant_context(tenant_a):
        assert data_generations.data_version(tenant=tenant_a, kinds=funnels.FUNNEL_DATA)
    assert funnel_compute(tenant=tenant_a, period=APRIL, scope=KpiScope.team(west.pk)) == (
        west_funnel
    )
    # when West is renamed (no data changes), the kept groups carry the new name
    west.name = "IS West 2"
    with tenant_context(tenant_a):
        west.save()
    renamed = funnel_compute(tenant=tenant_a, **by_team)
    assert [group.label for group in renamed.groups] == ["IS West 2"]
    assert renamed == uncached(tenant_a, **by_team)


def test_a_bad_scope_is_a_validation_error_every_time(tenant_a: Any, april: Any) -> None:
    refresh(tenant_a)
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            funnel_compute(tenant=tenant_a, period=APRIL, scope=KpiScope("team", "x"))
