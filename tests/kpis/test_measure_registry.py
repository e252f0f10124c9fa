"""The measure registry: built-in declarations drive the refresh; an app's registered measures
are refreshed incrementally, rebuilt exactly, read by every path and kept per tenant."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

import tests.measure_app
from kpis.catalogue import BUILTIN_KPIS, MEASURES
from kpis.definitions import kpi_custom_create
from kpis.measures import Counting, Measure, kind_columns, register_measure, unregister_measure
from kpis.models import KpiMeasureValue, KpiTreeNode
from kpis.periods import Grain, period_containing
from kpis.scopes import KpiScope
from kpis.selectors import kpi_definitions, kpi_values
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty, writing
from pipeline import services as pipeline_services
from pipeline.dirty import mark_days_dirty, register_dirty_kind
from pipeline.models import DirtyKind
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory, api_token
from tests.measure_app.apps import MeasureAppConfig
from tests.measure_app.measures import LONG_CALLS, TALK_SECONDS, register, unregister

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered() -> Any:
    """The test app's measures, registered as its AppConfig.ready() does, then removed."""
    MeasureAppConfig("tests.measure_app", tests.measure_app).ready()
    yield
    unregister()


def _kpis(tenant: Any) -> None:
    kpi_custom_create(
        tenant=tenant, key="talk_per_call", name_ja="平均通話秒数", category="activity",
        layer="quality", numerator="talk_seconds", denominator="calls", unit="ratio",
    )  # fmt: skip
    kpi_custom_create(
        tenant=tenant, key="long_call_rate", name_ja="長時間通話率", category="activity",
        layer="quality", numerator="long_calls", denominator="calls", unit="percent",
    )  # fmt: skip


def _setup(tenant: Any) -> dict[str, Any]:
    team = TeamFactory(tenant=tenant, name="East")
    reps = [
        members.membership_add(
            tenant=tenant, user=UserFactory(username=f"{tenant.slug}{i}"), role=Role.REP, team=team
        )
        for i in range(2)
    ]
    with tenant_context(tenant):
        leads = [
            pipeline_services.lead_create(tenant=tenant, company=f"C{i}", source=source)
            for i, source in enumerate(("web", "event"))
        ]
    return {"team": team, "reps": reps, "leads": leads, "zone": zoneinfo.ZoneInfo(tenant.timezone)}


def _call(tenant: Any, world: dict[str, Any], day: dt.date, rep: int, lead: int, seconds: Any):
    at = dt.datetime.combine(day, dt.time(12), tzinfo=world["zone"])
    return pipeline_services.activity_create(
        tenant=tenant,
        lead=world["leads"][lead],
        rep=world["reps"][rep],
        type="call",
        occurred_at=at,
        duration_seconds=seconds,
    )


def _table() -> dict[tuple, Decimal]:
    return {
        row[:-1]: row[-1]
        for row in KpiMeasureValue.objects.values_list(
            "grain", "period_start", "scope_type", "scope_key", "measure", "value"
        )
    }


def _values(tenant: Any, world: dict[str, Any], grain: str, day: dt.date) -> dict[tuple, Any]:
    period = period_containing(grain, day, tenant.fiscal_year_start_month)
    reps, team = world["reps"], world["team"]
    scopes = [
        KpiScope.tenant(), KpiScope.team(team.pk), KpiScope.rep(reps[0].pk),
        KpiScope.rep(reps[1].pk), KpiScope.source("web"), KpiScope.source("event"),
    ]  # fmt: skip
    kpis = list(kpi_definitions(tenant=tenant, keys=["talk_per_call", "long_call_rate"]).values())
    values = kpi_values(tenant=tenant, kpis=kpis, periods=[period], scopes=scopes)
    return {
        (key, scope.type, scope.key): (value.numerator, value.denominator, value.value)
        for (key, _, scope), value in values.items()
    }


def test_builtin_declarations_drive_the_refresh_and_the_catalogue() -> None:
    # the columns each kind of change recomputes come from the declarations
    assert kind_columns() == writing.KIND_MEASURES
    assert writing.KIND_MEASURES[DirtyKind.DEALS][-1] == "weighted_pipeline_change"
    # and every built-in KPI divides measures the registry has
    assert {m for kpi in BUILTIN_KPIS for m in kpi.measures} <= set(MEASURES)
    assert MEASURES["leads_touched"].counting == Counting.DISTINCT
    assert MEASURES["weighted_pipeline"].counting == Counting.STOCK


def test_a_registered_measure_must_be_additive_new_computable_and_dirtied(registered) -> None:
    daily = TALK_SECONDS.daily
    for bad, message in (
        (Measure("calls", "again", dirty_kinds=1, daily=daily), "registered already"),
        (Measure("Bad-Key", "x", dirty_kinds=1, daily=daily), "measure key"),
        (Measure("x" * 41, "x", dirty_kinds=1, daily=daily), "measure key"),
        (Measure("uniq", "x", Counting.DISTINCT, dirty_kinds=1, daily=daily), "additive"),
        (Measure("nodaily", "x", dirty_kinds=1), "daily computation"),
        (Measure("clean", "x", daily=daily), "DirtyKind"),
    ):
        with pytest.raises(ValueError, match=message):
            register_measure(bad)
    # registering the same declaration twice (two ready() calls) is harmless
    register()
    assert MEASURES["talk_seconds"] is TALK_SECONDS
    # and a built-in measure cannot be unregistered
    unregister_measure("calls")
    assert "calls" in MEASURES


def test_custom_kpis_are_validated_against_the_registry(tenant_a: Any) -> None:
    from tenants.errors import ValidationFailed

    # an unregistered measure is an unknown one
    with tenant_context(tenant_a), pytest.raises(ValidationFailed) as error:
        _kpis(tenant_a)
    assert error.value.field == "numerator"


def test_registered_measures_refresh_incrementally_and_match_a_rebuild(
    tenant_a: Any, registered
) -> None:
    # given a tenant with two reps and KPIs over the test app's measures
    world = _setup(tenant_a)
    monday = dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        _kpis(tenant_a)
        kpi_snapshots_rebuild(tenant=tenant_a)
        # when calls are ingested on several days and the dirty days refreshed
        _call(tenant_a, world, monday, 0, 0, 400)
        _call(tenant_a, world, monday, 1, 1, 60)
        _call(tenant_a, world, monday + dt.timedelta(days=2), 0, 1, 300)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # and later more, one of them without a duration
        _call(tenant_a, world, monday + dt.timedelta(days=2), 1, 0, 20)
        _call(tenant_a, world, monday + dt.timedelta(days=30), 0, 0, 1000)
        _call(tenant_a, world, monday + dt.timedelta(days=30), 0, 0, None)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        month = _values(tenant_a, world, Grain.MONTH, monday)
        incremental = _table()
        # then June holds the hand-computed values in every scope
        team, rep0, rep1 = str(world["team"].pk), str(world["reps"][0].pk), str(world["reps"][1].pk)
        assert month[("talk_per_call", "tenant", "")] == (780, 4, Decimal(195))
        assert month[("long_call_rate", "tenant", "")] == (2, 4, Decimal(50))
        assert month[("talk_per_call", "team", team)] == (780, 4, Decimal(195))
        assert month[("talk_per_call", "rep", rep0)] == (700, 2, Decimal(350))
        assert month[("long_call_rate", "rep", rep1)] == (0, 2, Decimal(0))
        assert month[("talk_per_call", "source", "web")] == (420, 2, Decimal(210))
        assert month[("talk_per_call", "source", "event")] == (360, 2, Decimal(180))
        # and July, the week and the fiscal year too
        july = _values(tenant_a, world, Grain.MONTH, monday + dt.timedelta(days=30))
        assert july[("talk_per_call", "tenant", "")] == (1000, 2, Decimal(500))
        week = _values(tenant_a, world, Grain.WEEK, monday)
        assert week[("long_call_rate", "source", "event")] == (1, 2, Decimal(50))
        year = _values(tenant_a, world, Grain.YEAR, monday)
        assert year[("talk_per_call", "rep", rep0)] == (1700, 4, Decimal(425))
        # and a rebuild gives exactly the same rows
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert _table() == incremental
        assert _values(tenant_a, world, Grain.MONTH, monday) == month


def test_a_changed_row_is_recounted_and_periods_move_by_the_change(
    tenant_a: Any, registered
) -> None:
    world = _setup(tenant_a)
    monday = dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        _kpis(tenant_a)
        call = _call(tenant_a, world, monday, 0, 0, 400)
        _call(tenant_a, world, monday + dt.timedelta(days=1), 0, 0, 100)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # when a call's duration is corrected (a change, so its day is rescanned)
        type(call).objects.filter(pk=call.pk).update(duration_seconds=10)
        mark_days_dirty(tenant=tenant_a, datetimes=[call.occurred_at], rescan=True)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # then the month moved by the change only, as a rebuild agrees
        month = _values(tenant_a, world, Grain.MONTH, monday)
        assert month[("talk_per_call", "tenant", "")] == (110, 2, Decimal(55))
        assert month[("long_call_rate", "tenant", "")] == (0, 2, Decimal(0))
        refreshed = _table()
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert _table() == refreshed


@pytest.mark.postgres
def test_a_measure_recomputes_only_on_the_kinds_that_dirty_it(tenant_a: Any) -> None:
    # given a measure of its own kind (as handoff's rows will have)
    kind = register_dirty_kind("measure-app-test")
    assert register_dirty_kind("measure-app-test") == kind
    assert not kind & DirtyKind.ALL
    flagged = Measure(
        "flagged_talk", "Talk seconds, recomputed on its own kind.", dirty_kinds=int(kind),
        daily=TALK_SECONDS.daily,
    )  # fmt: skip
    register_measure(flagged)
    try:
        world = _setup(tenant_a)
        monday = dt.date(2026, 6, 1)
        with tenant_context(tenant_a):
            # (the tenant's first refresh builds it whole: 400 s)
            call = _call(tenant_a, world, monday, 0, 0, 400)
            kpi_snapshots_refresh_dirty(tenant=tenant_a)

            def june() -> Decimal:
                return KpiMeasureValue.objects.get(
                    measure="flagged_talk", grain=Grain.MONTH, scope_type="tenant"
                ).value

            assert june() == 400
            # when another call is ingested (an activities mark)
            _call(tenant_a, world, monday, 1, 0, 100)
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
            # then the measure of another kind is not recomputed
            assert june() == 400
            # until its own kind marks the day
            mark_days_dirty(tenant=tenant_a, datetimes=[call.occurred_at], kinds=kind)
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
            assert june() == 500
    finally:
        unregister_measure("flagged_talk")


@pytest.mark.postgres
def test_portable_and_postgresql_daily_computations_agree(tenant_a: Any) -> None:
    world = _setup(tenant_a)
    monday = dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        for offset, rep, lead, seconds in ((0, 0, 0, 400), (0, 1, 1, 60), (3, 0, 1, None)):
            _call(tenant_a, world, monday + dt.timedelta(days=offset), rep, lead, seconds)
        args = {"tenant_id": tenant_a.pk, "start": monday, "end": monday + dt.timedelta(7)}
        portable = TALK_SECONDS.daily(**args, zone=world["zone"])
        assert TALK_SECONDS.pg_daily(**args, zone=world["zone"]) == portable
        assert portable[(monday, "tenant", "")] == 460
        assert LONG_CALLS.daily(**args, zone=world["zone"])[(monday, "tenant", "")] == 1


def test_reads_add_one_query_and_tenants_never_see_each_others_values(
    tenant_a: Any, tenant_b: Any, registered, django_assert_max_num_queries: Any
) -> None:
    world = _setup(tenant_a)
    monday = dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        _kpis(tenant_a)
        _call(tenant_a, world, monday, 0, 0, 400)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        kpis = list(kpi_definitions(tenant=tenant_a, keys=["talk_per_call"]).values())
        period = period_containing(Grain.MONTH, monday, tenant_a.fiscal_year_start_month)
        # snapshot rows, dirty days and the registered values (one query for all of them)
        with django_assert_max_num_queries(3):
            values = kpi_values(
                tenant=tenant_a, kpis=kpis, periods=[period], scopes=[KpiScope.tenant()]
            )
        assert values[("talk_per_call", period, KpiScope.tenant())].numerator == 400
    # and tenant B, with the same KPI, sees none of A's values
    _setup(tenant_b)
    with tenant_context(tenant_b):
        _kpis(tenant_b)
        assert not KpiMeasureValue.objects.exists()
        kpis = list(kpi_definitions(tenant=tenant_b, keys=["talk_per_call"]).values())
        values = kpi_values(tenant=tenant_b, kpis=kpis, periods=[period], scopes=[KpiScope()])
        assert values[("talk_per_call", period, KpiScope())].numerator == 0


VALUES = """
query($period: String!, $kpis: [String!]) {
  kpiValues(period: $period, kpis: $kpis) { value { kpi { key } value numerator pending } }
}"""


def test_graphql_serves_a_kpi_over_a_registered_measure(
    graphql: Any, tenant_a: Any, registered
) -> None:
    world = _setup(tenant_a)
    with tenant_context(tenant_a):
        _kpis(tenant_a)
        _call(tenant_a, world, dt.date(2026, 6, 1), 0, 0, 400)
        _call(tenant_a, world, dt.date(2026, 6, 2), 0, 0, 200)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    secret = api_token(tenant_a, "kpis:read", name="r")
    _, body = graphql(VALUES, {"period": "2026-06", "kpis": ["talk_per_call"]}, token=secret)
    value = body["data"]["kpiValues"][0]["value"]
    assert (value["value"], value["numerator"], value["pending"]) == ("300.0000", "600", False)


MEASURE_LIST = "{ kpiMeasures { key counting money builtin } }"


def test_graphql_lists_the_registered_measures(graphql: Any, tenant_a: Any, registered) -> None:
    secret = api_token(tenant_a, "kpis:read", name="r")
    _, body = graphql(MEASURE_LIST, token=secret)
    listed = {row["key"]: row for row in body["data"]["kpiMeasures"]}
    assert listed["calls"] == {"key": "calls", "counting": "sum", "money": False, "builtin": True}
    assert listed["talk_seconds"]["builtin"] is False
    assert listed["leads_touched"]["counting"] == "distinct"
    # and a token without the KPI scope reads nothing
    secret = api_token(tenant_a, "records:read", name="p")
    _, body = graphql(MEASURE_LIST, token=secret)
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_trees_read_a_registered_measure_on_both_paths(
    tenant_a: Any, registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kpis.periods import parse_period
    from kpis.trees import evaluation, pg_reading
    from kpis.trees.editing import kpi_tree_node_add
    from kpis.trees.template import kpi_tree_ensure_default

    # given the default tree with a node of a KPI over a registered measure
    world = _setup(tenant_a)
    with tenant_context(tenant_a):
        _kpis(tenant_a)
        _call(tenant_a, world, dt.date(2026, 6, 1), 0, 0, 400)
        _call(tenant_a, world, dt.date(2026, 6, 2), 1, 1, 100)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    with tenant_context(tenant_a):
        root = KpiTreeNode.objects.get(tree=tree, parent=None)
    kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=root, kind="kpi", kpi_key="talk_per_call")

    def actual() -> Any:
        result = evaluation.kpi_tree_evaluate(
            tenant=tenant_a, tree=tree, period=parse_period("FY2026"), scope=KpiScope.tenant()
        )
        [node] = [n for n in result.nodes if n.node.kpi_key == "talk_per_call"]
        return node.actual.numerator, node.actual.denominator, node.actual.value

    # when it is evaluated (one round trip on PostgreSQL), and through the ORM
    first = actual()
    monkeypatch.setattr(pg_reading, "available", lambda: False)
    # then both read the registered measure: 500 s over 2 calls
    assert first == actual() == (500, 2, Decimal(250))


def test_a_measure_registered_on_a_tenant_with_data_is_built_whole_by_its_first_refresh(
    tenant_a: Any,
) -> None:
    # given a tenant whose calls were counted before the test app's measures existed
    world = _setup(tenant_a)
    monday = dt.date(2026, 6, 1)
    with tenant_context(tenant_a):
        _call(tenant_a, world, monday, 0, 0, 400)
        kpi_snapshots_rebuild(tenant=tenant_a)
    register()
    try:
        with tenant_context(tenant_a):
            _kpis(tenant_a)
            # when a deploy registers them and the next call's day is refreshed
            _call(tenant_a, world, monday + dt.timedelta(days=3), 1, 1, 100)
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
            # then June counts the call from before the measure too
            month = _values(tenant_a, world, Grain.MONTH, monday)
            assert month[("talk_per_call", "tenant", "")] == (500, 2, Decimal(250))
            # and later refreshes move it by their days only, as a rebuild agrees
            _call(tenant_a, world, monday + dt.timedelta(days=4), 1, 1, 50)
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
            month = _values(tenant_a, world, Grain.MONTH, monday)
            assert month[("talk_per_call", "tenant", "")] == (550, 3, Decimal(550) / 3)
            refreshed = _table()
            kpi_snapshots_rebuild(tenant=tenant_a)
            assert _table() == refreshed
    finally:
        unregister()
    # and a rebuild once they are gone drops their values
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert not KpiMeasureValue.objects.exists()
