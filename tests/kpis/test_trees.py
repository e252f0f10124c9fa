"""KPI trees: the default template, editing rules, 逆算, attainment, projection and the API."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from strawberry.relay import to_base64

from kpis.definitions import kpi_custom_create
from kpis.models import KpiTree, KpiTreeNode
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.selectors import measure_values
from kpis.snapshots import kpi_snapshots_rebuild
from kpis.trees import (
    DEFAULT_TREE_NAME,
    KEEP,
    NodeEvaluation,
    RequiredBasis,
    TreeEvaluation,
    kpi_tree_create,
    kpi_tree_default_evaluate,
    kpi_tree_default_with_nodes,
    kpi_tree_ensure_default,
    kpi_tree_evaluate,
    kpi_tree_node_add,
    kpi_tree_node_remove,
    kpi_tree_node_update,
    pg_reading,
)
from pipeline.demo import seed_demo
from pipeline.models import DirtyDay
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import TenantClosure
from tenants.scopes import Role
from tests.factories import MembershipFactory, TeamFactory
from tests.kpis.test_targets import set_target, snap

pytestmark = pytest.mark.django_db

TENANT = KpiScope.tenant()
DRIVERS = ("win_rate", "opportunity_rate", "meeting_rate", "leads")
FINISHED = dt.date(2025, 6, 1)  # "today" after April 2025
D = Decimal

# --- helpers -------------------------------------------------------------------------------


def evaluate(
    tenant: Any,
    *,
    label: str = "2025-04",
    scope: KpiScope = TENANT,
    tree: KpiTree | None = None,
    comparison: str | None = None,
    today: dt.date = FINISHED,
) -> TreeEvaluation:
    return kpi_tree_evaluate(
        tenant=tenant,
        tree=tree or kpi_tree_ensure_default(tenant=tenant),
        period=parse_period(label),
        scope=scope,
        comparison_period=None if comparison is None else parse_period(comparison),
        today=today,
    )


def by_key(evaluation: TreeEvaluation) -> dict[str, NodeEvaluation]:
    return {n.node.kpi_key: n for n in evaluation.nodes if n.node.kpi_key}


def plan(evaluation: TreeEvaluation, *keys: str) -> dict[str, tuple]:
    """(required, ceil, basis) per KPI key."""
    nodes = by_key(evaluation)
    return {
        key: (
            nodes[key].required,
            nodes[key].required_rounded,
            None if nodes[key].basis is None else nodes[key].basis.value,
        )
        for key in keys
    }


def article_targets(tenant: Any, *, kgi: Any = 10) -> None:
    """The article's example: 10 won deals with win 25 %, opportunity 50 %, meeting 20 %."""
    set_target(tenant, "won_deals", kgi)
    set_target(tenant, "win_rate", 25)
    set_target(tenant, "opportunity_rate", 50)
    set_target(tenant, "meeting_rate", 20)


# --- the default tree ------------------------------------------------------------------------


def test_a_new_tenant_gets_the_articles_default_tree(tenant_a: Any) -> None:
    # given a tenant just created (the tenant-created hook seeded its tree)
    with tenant_context(tenant_a):
        trees = list(KpiTree.objects.values_list("name", "is_default"))
    assert trees == [(DEFAULT_TREE_NAME, True)]
    # when it is evaluated, then the nodes follow the article: KGI, three KSFs and their KPIs
    shape = [(n.depth, n.node.kind, n.label) for n in evaluate(tenant_a).nodes]
    assert shape == [
        (0, "kgi", "受注件数"),
        (1, "ksf", "商談の質向上"),
        (2, "kpi", "受注率"),
        (2, "kpi", "案件化率"),
        (1, "ksf", "商談数の確保"),
        (2, "kpi", "案件数"),
        (2, "kpi", "商談設定数"),
        (2, "kpi", "商談化率"),
        (1, "ksf", "リード獲得数確保・活動量"),
        (2, "kpi", "リード数"),
        (2, "kpi", "架電数"),
        (2, "kpi", "コネクト数"),
        (2, "kpi", "コネクト率"),
        (2, "kpi", "1人1日架電数"),
        (2, "kpi", "追客回数"),
    ]
    layers = {n.kpi.layer for n in evaluate(tenant_a).nodes if n.kpi is not None}
    assert layers == {"volume", "quality", "result"}


def test_ensure_default_is_idempotent_and_recreates_a_deleted_default(tenant_a: Any) -> None:
    first = kpi_tree_ensure_default(tenant=tenant_a)
    assert kpi_tree_ensure_default(tenant=tenant_a).pk == first.pk
    with tenant_context(tenant_a):
        first.delete()
    again = kpi_tree_ensure_default(tenant=tenant_a)
    assert again.pk != first.pk
    with tenant_context(tenant_a):
        assert KpiTreeNode.objects.filter(tree=again).count() == 15


def test_default_tree_with_nodes_is_one_query_and_the_tenants_own(
    tenant_a: Any, tenant_b: Any, django_assert_num_queries: Any
) -> None:
    # given both tenants' default trees, and another tree of A
    tree_a = kpi_tree_ensure_default(tenant=tenant_a)
    kpi_tree_ensure_default(tenant=tenant_b)
    kpi_tree_create(tenant=tenant_a, name="Other", from_default_template=True)
    with tenant_context(tenant_a):
        expected = set(KpiTreeNode.objects.filter(tree=tree_a).values_list("pk", flat=True))
        # when A's default tree is read with its nodes
        with django_assert_num_queries(1):
            tree, nodes = kpi_tree_default_with_nodes(tenant=tenant_a)
    # then it is A's default tree and exactly its nodes
    assert (tree.pk, tree.name, tree.is_default) == (tree_a.pk, DEFAULT_TREE_NAME, True)
    assert {node.pk for node in nodes} == expected
    assert len(expected) == 15


def test_default_tree_with_nodes_of_an_empty_or_missing_default(tenant_a: Any) -> None:
    # given a default tree whose nodes were all removed
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    with tenant_context(tenant_a):
        kgi = KpiTreeNode.objects.get(tree=tree, kind="kgi")
    kpi_tree_node_remove(tenant=tenant_a, node=kgi)
    # then it is still the default tree, without nodes
    empty, nodes = kpi_tree_default_with_nodes(tenant=tenant_a)
    assert (empty.pk, nodes) == (tree.pk, [])
    # and once deleted, the template's tree is created again
    with tenant_context(tenant_a):
        tree.delete()
    created, nodes = kpi_tree_default_with_nodes(tenant=tenant_a)
    assert created.pk != tree.pk
    assert len(nodes) == 15


def test_evaluation_with_the_nodes_read_already(tenant_a: Any) -> None:
    # given the article's targets and April's actuals
    article_targets(tenant_a)
    april_actuals(tenant_a)
    tree, nodes = kpi_tree_default_with_nodes(tenant=tenant_a)
    # when the tree is evaluated with its nodes passed in, and reading them itself
    given = kpi_tree_evaluate(
        tenant=tenant_a, tree=tree, period=parse_period("2025-04"), scope=TENANT, nodes=nodes
    )
    read = evaluate(tenant_a, tree=tree)
    # then both are the same evaluation
    assert given == read
    assert given.projected_kgi == D(9)
    # and the nodes of another tree are refused
    other = kpi_tree_create(tenant=tenant_a, name="Other", from_default_template=True)
    with pytest.raises(ValueError):
        kpi_tree_evaluate(
            tenant=tenant_a, tree=other, period=parse_period("2025-04"), scope=TENANT, nodes=nodes
        )


# --- 逆算 (top-down) ---------------------------------------------------------------------------


def test_article_example_with_rate_targets(tenant_a: Any) -> None:
    # given the KGI target 10 and rate targets 25 / 50 / 20 %
    article_targets(tenant_a)
    # when
    evaluation = evaluate(tenant_a)
    # then 10 ÷ 25 % = 40 opportunities ÷ 50 % = 80 meetings ÷ 20 % = 400 leads
    assert plan(
        evaluation,
        "won_deals",
        "opportunities",
        "meetings_set",
        "leads",
        "win_rate",
        "opportunity_rate",
        "meeting_rate",
    ) == {
        "won_deals": (D(10), 10, "target"),
        "opportunities": (D(40), 40, "derived"),
        "meetings_set": (D(80), 80, "derived"),
        "leads": (D(400), 400, "derived"),
        "win_rate": (D(25), None, "target"),
        "opportunity_rate": (D(50), None, "target"),
        "meeting_rate": (D(20), None, "target"),
    }


def test_article_example_from_the_reference_rates(tenant_a: Any) -> None:
    # given only the KGI target, and no history: the article's reference rates are used
    set_target(tenant_a, "won_deals", 10)
    evaluation = evaluate(tenant_a)
    assert plan(
        evaluation, "opportunities", "meetings_set", "leads", "win_rate", "meeting_rate"
    ) == {
        "opportunities": (D(40), 40, "derived"),
        "meetings_set": (D(80), 80, "derived"),
        "leads": (D(400), 400, "derived"),
        "win_rate": (D(25), None, "reference"),
        "meeting_rate": (D(20), None, "reference"),
    }


def test_required_is_the_ceiling_of_the_exact_value_never_compounded(tenant_a: Any) -> None:
    # given rates that do not divide evenly: 10 ÷ 30 % ÷ 50 % ÷ 50 %
    set_target(tenant_a, "won_deals", 10)
    set_target(tenant_a, "win_rate", 30)
    set_target(tenant_a, "opportunity_rate", 50)
    set_target(tenant_a, "meeting_rate", 50)
    nodes = by_key(evaluate(tenant_a))
    # then the exact values are kept and only the shown value is rounded up:
    # 400/3 = 133.33… → 134 (compounded ceilings would give 34 → 68 → 136)
    assert nodes["opportunities"].required == D("33.33333333333333333333333333")
    assert nodes["opportunities"].required_rounded == 34
    assert nodes["meetings_set"].required == D("66.66666666666666666666666667")
    assert nodes["meetings_set"].required_rounded == 67
    assert nodes["leads"].required == D("133.3333333333333333333333333")
    assert nodes["leads"].required_rounded == 134
    assert str(nodes["leads"].required_exact) == "400/3"


def test_missing_rate_targets_fall_back_to_own_history_summed_not_averaged(
    tenant_a: Any,
) -> None:
    # given three months of history (and an older month that must be ignored)
    snap(tenant_a, "2024-12", leads_created=10, meetings=10, opportunities=10, wins=10)
    snap(tenant_a, "2025-01", leads_created=100, meetings=10, opportunities=5, wins=1)
    snap(tenant_a, "2025-02", leads_created=300, meetings=90, opportunities=45, wins=9)
    # meeting rate: (10 + 90) ÷ (100 + 300) = 25 % (the mean of 10 % and 30 % would be 20 %)
    # opportunity rate: 50 ÷ 100 = 50 %; win rate has a target of 25 %
    set_target(tenant_a, "won_deals", 10)
    set_target(tenant_a, "win_rate", 25)
    assert plan(
        evaluate(tenant_a),
        "opportunities",
        "meetings_set",
        "leads",
        "win_rate",
        "opportunity_rate",
        "meeting_rate",
    ) == {
        "opportunities": (D(40), 40, "derived"),
        "meetings_set": (D(80), 80, "derived"),
        "leads": (D(320), 320, "derived"),
        "win_rate": (D(25), None, "target"),
        "opportunity_rate": (D(50), None, "history"),
        "meeting_rate": (D(25), None, "history"),
    }


def test_without_a_kgi_target_there_is_no_required_volume(tenant_a: Any) -> None:
    nodes = by_key(evaluate(tenant_a))
    assert [(k, nodes[k].required, nodes[k].basis) for k in ("won_deals", "leads", "calls")] == [
        ("won_deals", None, None),
        ("leads", None, None),
        ("calls", None, None),
    ]
    # rates still show the value they would be planned with
    assert (nodes["win_rate"].required, nodes["win_rate"].basis) == (
        D(25),
        RequiredBasis.REFERENCE,
    )
    assert all(n.attainment is None for n in nodes.values())


def test_required_calls_per_rep_per_working_day(tenant_a: Any) -> None:
    # given the article's plan (80 meetings), a history of 10 connects per meeting and a
    # 20 % connect rate, and 4 reps active in March
    article_targets(tenant_a)
    for label in ("2025-01", "2025-02"):
        snap(tenant_a, label, calls=1000, connects=200, meetings=20)
    snap(tenant_a, "2025-03", calls=1000, connects=200, meetings=20, active_reps=4)
    # when
    evaluation = evaluate(tenant_a)
    # then connects = 80 x 10, calls = 800 ÷ 20 %, per rep-day = 4000 ÷ (4 reps x 21 days);
    # April 2025 in Japan has 22 weekdays minus 昭和の日 (29 April)
    assert (evaluation.headcount, evaluation.working_days) == (4, 21)
    assert plan(evaluation, "connects", "calls", "connect_rate", "calls_per_rep_day") == {
        "connects": (D(800), 800, "derived"),
        "calls": (D(4000), 4000, "derived"),
        "connect_rate": (D(20), None, "history"),
        "calls_per_rep_day": (D("47.61904761904761904761904762"), 48, "derived"),
    }


@pytest.mark.parametrize(
    ("scope_name", "expected"),
    [("tenant", 3), ("east", 2), ("west", 1), ("rep", 1), ("source", 3)],
)
def test_headcount_falls_back_to_the_scopes_reps(
    tenant_a: Any, scope_name: str, expected: int
) -> None:
    # given no activity in March; East has two reps and a manager, West one rep
    east = TeamFactory(tenant=tenant_a, name="East")
    west = TeamFactory(tenant=tenant_a, name="West")
    reps = [
        MembershipFactory(tenant=tenant_a, team=team, role=Role.REP) for team in (east, east, west)
    ]
    MembershipFactory(tenant=tenant_a, team=east, role=Role.MANAGER)
    MembershipFactory(tenant=tenant_a, team=east, role=Role.REP, is_active=False)
    scope = {
        "tenant": TENANT,
        "east": KpiScope.team(east.pk),
        "west": KpiScope.team(west.pk),
        "rep": KpiScope.rep(reps[0].pk),
        "source": KpiScope.source("web"),
    }[scope_name]
    assert evaluate(tenant_a, scope=scope).headcount == expected


def test_headcount_is_the_reps_active_in_the_previous_period(tenant_a: Any) -> None:
    snap(tenant_a, "2025-03", active_reps=7)
    snap(tenant_a, "2025-04", active_reps=2)
    assert evaluate(tenant_a).headcount == 7


# --- attainment, bottleneck and projection ---------------------------------------------------


def april_actuals(tenant: Any, **overrides: Any) -> None:
    measures = {
        "leads_created": 300,  # 300 ÷ 400 required = 0.75
        "meetings": 66,  # meeting rate 22 % ÷ 20 % = 1.1
        "opportunities": 30,  # opportunity rate 45.45… % ÷ 50 % = 0.9090…
        "wins": 9,  # win rate 30 % ÷ 25 % = 1.2
        "won_deals": 8,  # 8 ÷ 10 = 0.8
    }
    snap(tenant, "2025-04", **(measures | overrides))


def test_attainment_and_bottleneck(tenant_a: Any) -> None:
    # given the article's plan and April's actuals
    article_targets(tenant_a)
    april_actuals(tenant_a)
    # when
    evaluation = evaluate(tenant_a)
    nodes = by_key(evaluation)
    # then attainment = actual ÷ target (the required value for volumes)
    assert {key: nodes[key].attainment for key in nodes} == {
        "won_deals": D("0.8"),
        "win_rate": D("1.2"),
        "opportunity_rate": D("0.9090909090909090909090909091"),
        "opportunities": D("0.75"),
        "meetings_set": D("0.825"),
        "meeting_rate": D("1.1"),
        "leads": D("0.75"),
        "calls": None,
        "connects": None,
        "connect_rate": None,
        "calls_per_rep_day": None,
        "follow_ups_per_lead": None,
    }
    # and the gap is actual minus the same base, in the KPI's unit (negative when short)
    assert {key: nodes[key].gap for key in nodes if nodes[key].gap is not None} == {
        "won_deals": D(-2),
        "win_rate": D(5),
        "opportunity_rate": D("-4.545454545454545454545454545"),
        "opportunities": D(-10),
        "meetings_set": D(-14),
        "meeting_rate": D(2),
        "leads": D(-100),
    }
    # and the bottleneck is the driver with the lowest attainment (opportunities, a volume
    # between two rates, is not a driver)
    assert evaluation.bottleneck is nodes["leads"]
    # and the projection is leads x the three actual rates: 300 x 22 % x 30/66 x 30 % = 9
    assert evaluation.projected_kgi == D(9)
    # and KSF nodes carry no values
    ksf = [n for n in evaluation.nodes if n.node.kind == "ksf"]
    assert {(n.actual, n.required, n.attainment) for n in ksf} == {(None, None, None)}


def test_rates_without_a_target_are_measured_against_the_plans_rate(tenant_a: Any) -> None:
    # given a KGI target only, and no history: the plan uses the article's reference rates
    # (25 %, 50 %, 20 %: 400 leads required)
    set_target(tenant_a, "won_deals", 10)
    # and April's rates at the reference but the win rate: 10 % (3 of 30)
    april_actuals(tenant_a, meetings=60, opportunities=30, wins=3, won_deals=3)
    evaluation = evaluate(tenant_a)
    nodes = by_key(evaluation)
    # then each driver's attainment is actual ÷ the value the plan used
    assert {key: (nodes[key].attainment, nodes[key].basis) for key in DRIVERS} == {
        "win_rate": (D("0.4"), RequiredBasis.REFERENCE),
        "opportunity_rate": (D(1), RequiredBasis.REFERENCE),
        "meeting_rate": (D(1), RequiredBasis.REFERENCE),
        "leads": (D("0.75"), RequiredBasis.DERIVED),
    }
    # and the bottleneck is the rate furthest short of the plan
    assert evaluation.bottleneck is nodes["win_rate"]
    # and projected KGI ÷ KGI target is the product of the drivers' attainments (DESIGN.md)
    product = math.prod(nodes[key].attainment for key in DRIVERS)
    assert evaluation.projected_kgi / nodes["won_deals"].target == product == D("0.3")


def test_an_explicit_volume_target_is_the_attainment_base(tenant_a: Any) -> None:
    article_targets(tenant_a)
    set_target(tenant_a, "leads", 500)
    april_actuals(tenant_a)
    leads = by_key(evaluate(tenant_a))["leads"]
    assert (leads.target, leads.required, leads.attainment) == (D(500), D(400), D("0.6"))
    assert leads.gap == D(-200)  # against the explicit target, not the required 400


def test_bottleneck_ties_go_to_the_driver_nearest_the_kgi(tenant_a: Any) -> None:
    # given leads at 0.75 and the win rate at 18.75 % ÷ 25 % = 0.75
    article_targets(tenant_a)
    april_actuals(tenant_a, meetings=64, opportunities=32, wins=6)
    evaluation = evaluate(tenant_a)
    nodes = by_key(evaluation)
    assert (nodes["leads"].attainment, nodes["win_rate"].attainment) == (D("0.75"), D("0.75"))
    assert evaluation.bottleneck is nodes["win_rate"]


@pytest.mark.parametrize(
    ("today", "projected", "elapsed"),
    [
        (dt.date(2025, 5, 1), D(9), None),  # finished: not scaled
        (dt.date(2025, 4, 10), D("23.625"), 8),  # 9 x 21 ÷ 8 working days (1-10 April)
        (dt.date(2025, 4, 30), D(9), 21),  # the last day: every working day elapsed
        (dt.date(2025, 3, 31), None, 0),  # not started
    ],
)
def test_projected_kgi_for_finished_and_in_progress_periods(
    tenant_a: Any, today: dt.date, projected: Decimal | None, elapsed: int | None
) -> None:
    article_targets(tenant_a)
    april_actuals(tenant_a)
    evaluation = evaluate(tenant_a, today=today)
    assert (evaluation.projected_kgi, evaluation.elapsed_working_days) == (projected, elapsed)


def test_projection_is_zero_when_the_chain_stops_at_zero(tenant_a: Any) -> None:
    # given leads and meetings but no opportunity: the win rate is null, the projection 0
    april_actuals(tenant_a, opportunities=0, wins=0)
    assert evaluate(tenant_a).projected_kgi == D(0)


def test_comparison_period_actuals(tenant_a: Any) -> None:
    april_actuals(tenant_a)
    snap(tenant_a, "2024-04", leads_created=250, meetings=25)
    evaluation = evaluate(tenant_a, comparison="2024-04")
    nodes = by_key(evaluation)
    assert nodes["leads"].comparison_actual.value == D(250)
    assert nodes["meeting_rate"].comparison_actual.value == D(10)
    assert nodes["leads"].actual.value == D(300)
    assert evaluate(tenant_a).nodes[1].comparison_actual is None


def test_scope_reads_the_scopes_snapshots_and_targets(tenant_a: Any) -> None:
    team = TeamFactory(tenant=tenant_a, name="East")
    east = KpiScope.team(team.pk)
    article_targets(tenant_a)
    set_target(tenant_a, "won_deals", 2, scope=east)
    snap(tenant_a, "2025-04", scope=east, leads_created=40)
    nodes = by_key(evaluate(tenant_a, scope=east))
    # the team's own KGI target, and the reference rates (the tenant's targets are not its)
    assert (nodes["leads"].required, nodes["leads"].actual.value) == (D(80), D(40))
    assert nodes["leads"].attainment == D("0.5")


# --- editing ---------------------------------------------------------------------------------


@pytest.fixture
def tree(tenant_a: Any) -> KpiTree:
    return kpi_tree_create(tenant=tenant_a, name="Plan B")


@pytest.fixture
def kgi(tenant_a: Any, tree: KpiTree) -> KpiTreeNode:
    return kpi_tree_node_add(
        tenant=tenant_a, tree=tree, parent=None, kind="kgi", kpi_key="won_deals"
    )


def test_building_a_tree(tenant_a: Any, tree: KpiTree, kgi: KpiTreeNode) -> None:
    ksf = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=kgi, kind="ksf", label="量")
    sub = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=ksf, kind="ksf", label="架電")
    calls = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=sub, kind="kpi", kpi_key="calls")
    connects = kpi_tree_node_add(
        tenant=tenant_a, tree=tree, parent=calls, kind="kpi", kpi_key="connects"
    )
    # siblings are appended in order
    second = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=ksf, kind="kpi", kpi_key="leads")
    assert (sub.order, second.order) == (1, 2)
    # a node moves (with its subtree) and is renamed
    kpi_tree_node_update(tenant=tenant_a, node=calls, parent=ksf, label="架電数 (IS)", order=0)
    shape = [(n.depth, n.label) for n in evaluate(tenant_a, tree=tree).nodes]
    assert shape == [
        (0, "受注件数"),
        (1, "量"),
        (2, "架電数 (IS)"),
        (3, "コネクト数"),
        (2, "架電"),
        (2, "リード数"),
    ]
    # removing a node removes its subtree
    assert kpi_tree_node_remove(tenant=tenant_a, node=calls) == 2
    with tenant_context(tenant_a):
        assert not KpiTreeNode.objects.filter(pk=connects.pk).exists()


def _refused(call: Any) -> tuple[str, str | None, str]:
    with pytest.raises(PublicError) as caught:
        call()
    return caught.value.code, caught.value.field, caught.value.message


def test_structural_rules(tenant_a: Any, tree: KpiTree, kgi: KpiTreeNode) -> None:
    ksf = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=kgi, kind="ksf", label="質")
    rate = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=ksf, kind="kpi", kpi_key="win_rate")
    sub = kpi_tree_node_add(tenant=tenant_a, tree=tree, parent=ksf, kind="ksf", label="細分")
    other_tree = kpi_tree_ensure_default(tenant=tenant_a)
    with tenant_context(tenant_a):
        foreign = KpiTreeNode.objects.filter(tree=other_tree, kind="ksf").first()

    def add(**kwargs: Any) -> Any:
        return lambda: kpi_tree_node_add(tenant=tenant_a, tree=tree, **kwargs)

    def move(node: KpiTreeNode, parent: Any) -> Any:
        return lambda: kpi_tree_node_update(tenant=tenant_a, node=node, parent=parent)

    V, N = ErrorCode.VALIDATION, ErrorCode.NOT_FOUND
    assert _refused(add(parent=None, kind="kgi", kpi_key="revenue")) == (
        V,
        "kind",
        "A tree has one KGI.",
    )
    assert _refused(add(parent=ksf, kind="kgi", kpi_key="revenue")) == (
        V,
        "parentId",
        "The KGI is the root of its tree.",
    )
    assert _refused(add(parent=None, kind="kpi", kpi_key="leads")) == (
        V,
        "parentId",
        "Only the KGI is a root: give a parent.",
    )
    assert _refused(add(parent=rate, kind="ksf", label="x")) == (
        V,
        "parentId",
        "A KSF goes under the KGI or another KSF.",
    )
    assert _refused(add(parent=kgi, kind="ksf", label="  ")) == (
        V,
        "label",
        "A KSF needs a label.",
    )
    assert _refused(add(parent=kgi, kind="ksf", label="x", kpi_key="leads")) == (
        V,
        "kpi",
        "A KSF groups KPIs and has no KPI of its own.",
    )
    assert _refused(add(parent=ksf, kind="kpi", kpi_key="")) == (
        V,
        "kpi",
        "A KPI node needs a KPI.",
    )
    assert _refused(add(parent=ksf, kind="kpi", kpi_key="nope")) == (
        N,
        "kpi",
        "KPI 'nope' not found.",
    )
    assert _refused(add(parent=ksf, kind="xyz", kpi_key="leads")) == (
        V,
        "kind",
        "Unknown node kind 'xyz'.",
    )
    assert _refused(add(parent=foreign, kind="kpi", kpi_key="leads")) == (
        V,
        "parentId",
        "The parent is a node of another tree.",
    )
    assert _refused(move(ksf, sub)) == (
        V,
        "parentId",
        "A node cannot move under itself or one of its descendants.",
    )
    assert _refused(move(ksf, ksf))[2] == (
        "A node cannot move under itself or one of its descendants."
    )
    assert _refused(move(rate, foreign))[2] == "The parent is a node of another tree."
    assert _refused(move(kgi, ksf))[2] == "The KGI is the root of its tree."
    assert _refused(move(rate, None))[2] == "Only the KGI is a root: give a parent."
    # nothing changed
    shape = [(n.depth, n.node.kpi_key or n.node.label) for n in evaluate(tenant_a, tree=tree).nodes]
    assert shape == [(0, "won_deals"), (1, "質"), (2, "win_rate"), (2, "細分")]


def test_another_tenants_tree_or_node_is_not_found(
    tenant_a: Any, tenant_b: Any, tree: KpiTree, kgi: KpiTreeNode
) -> None:
    tree_b = kpi_tree_ensure_default(tenant=tenant_b)
    with pytest.raises(NotFound):
        kpi_tree_node_add(tenant=tenant_b, tree=tree, parent=None, kind="kgi", kpi_key="leads")
    with pytest.raises(NotFound):
        kpi_tree_node_add(tenant=tenant_b, tree=tree_b, parent=kgi, kind="kpi", kpi_key="leads")
    with pytest.raises(NotFound):
        kpi_tree_node_update(tenant=tenant_b, node=kgi, label="x", parent=KEEP)
    with pytest.raises(NotFound):
        kpi_tree_node_remove(tenant=tenant_b, node=kgi)
    with pytest.raises(NotFound):
        evaluate(tenant_b, tree=tree)


def test_tree_names_are_unique_and_make_default_moves_the_default(tenant_a: Any) -> None:
    with pytest.raises(PublicError) as caught:
        kpi_tree_create(tenant=tenant_a, name=DEFAULT_TREE_NAME)
    assert (caught.value.code, caught.value.field) == (ErrorCode.CONFLICT, "name")
    with pytest.raises(ValidationFailed):
        kpi_tree_create(tenant=tenant_a, name="  ")
    new = kpi_tree_create(
        tenant=tenant_a, name="FY2026", from_default_template=True, is_default=True
    )
    assert kpi_tree_ensure_default(tenant=tenant_a).pk == new.pk
    with tenant_context(tenant_a):
        assert KpiTreeNode.objects.filter(tree=new).count() == 15
        assert KpiTree.objects.filter(is_default=True).count() == 1


# --- query counts --------------------------------------------------------------------------

# The nodes, the closures (once for every period, the one in progress included), kpi_values
# (snapshots, stocks, dirty days), the targets, the scope's reps (no rep was active in
# March), and the tenant context's savepoint (on PostgreSQL also its two settings). On
# PostgreSQL the nodes, closures, snapshots, dirty days and targets are one round trip.
EVALUATE_BUDGET = {"sqlite": 9, "postgresql": 7}
# Over HTTP: the token look-up and its last-used stamp (with savepoints), the request's
# tenant context, the default tree with its nodes (one query; on PostgreSQL in the
# evaluation's round trip), then the evaluation.
API_BUDGET = {"sqlite": 15, "postgresql": 17}


def _grow(tenant: Any, tree: KpiTree, extra: int) -> None:
    """Add `extra` nodes: a KSF and KPIs under it."""
    if not extra:
        return
    with tenant_context(tenant):
        kgi = KpiTreeNode.objects.get(tree=tree, kind="kgi")
    ksf = kpi_tree_node_add(tenant=tenant, tree=tree, parent=kgi, kind="ksf", label="追加")
    keys = ["mqls", "sqls_created", "pipeline_created", "weighted_pipeline", "revenue",
            "emails_sent", "email_delivery_rate", "email_open_rate",
            "email_click_rate"]  # fmt: skip
    for index in range(extra - 1):
        kpi_tree_node_add(
            tenant=tenant, tree=tree, parent=ksf, kind="kpi", kpi_key=keys[index % len(keys)]
        )


def test_default_tree_evaluation_is_one_round_trip_on_postgresql(
    tenant_a: Any, django_assert_num_queries: Any
) -> None:
    # given the default tree, the article's plan, April's actuals and reps active in March
    kpi_tree_ensure_default(tenant=tenant_a)
    article_targets(tenant_a)
    april_actuals(tenant_a)
    snap(tenant_a, "2025-03", active_reps=3)
    # when it is evaluated in the tenant's context, then in one query on PostgreSQL (the
    # nodes, closures, snapshots, dirty days and targets: five elsewhere)
    queries = {"sqlite": 5, "postgresql": 1}[connection.vendor]
    with tenant_context(tenant_a), django_assert_num_queries(queries):
        evaluation = kpi_tree_default_evaluate(
            tenant=tenant_a,
            period=parse_period("2025-04"),
            scope=TENANT,
            comparison_period=parse_period("2025-03"),
            today=FINISHED,
        )
    assert (evaluation.projected_kgi, evaluation.headcount) == (D(9), 3)


@pytest.mark.parametrize("extra", [0, 10])
def test_evaluation_query_count_does_not_grow_with_the_tree(
    tenant_a: Any, extra: int, django_assert_max_num_queries: Any
) -> None:
    # given the default tree, or the default tree with 10 more nodes, targets and data
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    _grow(tenant_a, tree, extra)
    article_targets(tenant_a)
    april_actuals(tenant_a)
    # when it is evaluated in progress, with a comparison period
    with django_assert_max_num_queries(EVALUATE_BUDGET[connection.vendor]):
        evaluation = evaluate(tenant_a, tree=tree, comparison="2025-03", today=dt.date(2025, 4, 10))
    # then
    assert len(evaluation.nodes) == 15 + extra
    assert evaluation.projected_kgi == D("23.625")


def test_evaluation_query_count_is_the_same_for_both_sizes(tenant_a: Any) -> None:
    small = kpi_tree_ensure_default(tenant=tenant_a)
    large = kpi_tree_create(tenant=tenant_a, name="Large", from_default_template=True)
    _grow(tenant_a, large, 10)
    larger = kpi_tree_create(tenant=tenant_a, name="Larger", from_default_template=True)
    _grow(tenant_a, larger, 40)
    counts = []
    for tree in (small, large, larger):
        with CaptureQueriesContext(connection) as queries:
            evaluate(tenant_a, tree=tree, comparison="2025-03")
        counts.append(len(queries))
    # NOTE: reads skip the stock and calendar queries when no KPI of the tree needs them, so
    # a tree that adds such a KPI may cost one or two more; never more with its size.
    assert counts[0] <= counts[1] <= counts[0] + 2
    assert counts[2] == counts[1]


# --- one round trip on PostgreSQL -----------------------------------------------------------


def _every_input(tenant: Any, *, actuals: int = 300) -> dict[str, KpiScope]:
    """Data for every read of an evaluation: targets, history, a tenant KPI and a stock on the
    default tree, a closure and a day waiting for its refresh; the tenant's and a team's."""
    team = TeamFactory(tenant=tenant, name="East")
    east = KpiScope.team(team.pk)
    article_targets(tenant)
    set_target(tenant, "won_deals", 3, scope=east)
    set_target(tenant, "leads", 500)
    april_actuals(tenant, leads_created=actuals)
    snap(tenant, "2025-04", scope=east, leads_created=actuals // 3, meetings=12)
    for label in ("2025-01", "2025-02", "2025-03"):
        snap(tenant, label, calls=1000, connects=200, meetings=20, active_reps=4)
    snap(tenant, "2025-03", scope=east, calls=400, connects=90, meetings=9, active_reps=2)
    snap(tenant, "2024-04", leads_created=250, meetings=25)
    snap(tenant, "2025-03-14", weighted_pipeline_change=D("1200.50"))
    snap(tenant, "2025-04-02", weighted_pipeline_change=D("-200.25"))
    with tenant_context(tenant):
        kpi_custom_create(
            tenant=tenant,
            key="meetings_per_lead",
            name_ja="リード当たり商談",
            category="outcome",
            layer="quality",
            numerator="meetings",
            denominator="leads_created",
            unit="ratio",
        )
    tree = kpi_tree_ensure_default(tenant=tenant)
    with tenant_context(tenant):
        ksf = KpiTreeNode.objects.get(tree=tree, kind="ksf", order=1)
        TenantClosure.objects.create(date=dt.date(2025, 4, 15), name="創立記念日")
        DirtyDay.objects.create(day=dt.date(2025, 4, 7))
    for key in ("meetings_per_lead", "weighted_pipeline"):
        kpi_tree_node_add(tenant=tenant, tree=tree, parent=ksf, kind="kpi", kpi_key=key)
    return {"tenant": TENANT, "east": east}


@pytest.mark.postgres
@pytest.mark.parametrize("scope_name", ["tenant", "east"])
@pytest.mark.parametrize("comparison", [None, "2025-03", "2024-04"])
@pytest.mark.parametrize("today", [FINISHED, dt.date(2025, 4, 10)])
def test_one_round_trip_gives_the_orms_evaluation(
    tenant_a: Any,
    tenant_b: Any,
    monkeypatch: pytest.MonkeyPatch,
    scope_name: str,
    comparison: str | None,
    today: dt.date,
) -> None:
    # given every kind of input for A, and B's own (other actuals, its own tenant KPI)
    scope = _every_input(tenant_a)[scope_name]
    _every_input(tenant_b, actuals=900)
    period = parse_period("2025-04")
    compared = None if comparison is None else parse_period(comparison)

    def evaluations() -> list[TreeEvaluation]:
        tree, nodes = kpi_tree_default_with_nodes(tenant=tenant_a)
        common = {"tenant": tenant_a, "period": period, "scope": scope, "today": today}
        return [
            kpi_tree_default_evaluate(**common, comparison_period=compared),
            kpi_tree_evaluate(**common, tree=tree, comparison_period=compared),
            kpi_tree_evaluate(**common, tree=tree, comparison_period=compared, nodes=nodes),
        ]

    # when A's tree is evaluated in one round trip, and through the ORM
    with CaptureQueriesContext(connection) as queries:
        one_trip = evaluations()
    monkeypatch.setattr(pg_reading, "available", lambda: False)
    through_orm = evaluations()
    # then the evaluations are equal, and the one round trip was taken
    assert one_trip == through_orm
    assert sum(";" in query["sql"] for query in queries.captured_queries) == 3
    # and they are A's: its leads, its tenant KPI, its stock, its calendar, its pending day
    nodes = by_key(one_trip[0])
    assert len(one_trip[0].nodes) == 17
    if scope_name == "tenant":
        assert nodes["leads"].actual.value == D(300)
        assert nodes["meetings_per_lead"].actual.value == D("0.22")
        assert nodes["weighted_pipeline"].actual.value == D("1000.25")
        assert nodes["leads"].actual.pending is True
        assert (one_trip[0].working_days, one_trip[0].headcount) == (20, 4)
    else:
        assert (nodes["leads"].actual.value, nodes["won_deals"].required) == (D(100), D(3))
        assert one_trip[0].headcount == 2


@pytest.mark.postgres
def test_one_round_trip_for_an_empty_tree_and_a_missing_default(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a tree without nodes, and no default tree
    empty = kpi_tree_create(tenant=tenant_a, name="Empty")
    with tenant_context(tenant_a):
        KpiTree.objects.filter(is_default=True).delete()
    # when the empty tree and the default tree are evaluated in one round trip
    one_trip = evaluate(tenant_a, tree=empty)
    created = kpi_tree_default_evaluate(
        tenant=tenant_a, period=parse_period("2025-04"), scope=TENANT, today=FINISHED
    )
    # then the empty tree has no nodes, and the default tree was created on first use
    assert (one_trip.tree.pk, one_trip.nodes, one_trip.projected_kgi) == (empty.pk, (), None)
    assert (created.tree.is_default, len(created.nodes)) == (True, 15)
    # and both are the evaluations the ORM gives
    monkeypatch.setattr(pg_reading, "available", lambda: False)
    assert evaluate(tenant_a, tree=empty) == one_trip
    assert evaluate(tenant_a, tree=created.tree) == created


@pytest.mark.parametrize("default", [True, False])
def test_evaluation_reads_stay_in_the_tenant(tenant_a: Any, tenant_b: Any, default: bool) -> None:
    # given A's data, and B's default tree without any
    _every_input(tenant_a)
    tree_b = kpi_tree_ensure_default(tenant=tenant_b)
    # when B's default tree is evaluated, as the default or by its id
    if default:
        evaluation = kpi_tree_default_evaluate(
            tenant=tenant_b, period=parse_period("2025-04"), scope=TENANT, today=FINISHED
        )
    else:
        evaluation = evaluate(tenant_b, tree=tree_b)
    # then nothing of A's is in it
    assert evaluation.tree.pk == tree_b.pk
    assert len(evaluation.nodes) == 15
    actuals = [n.actual for n in evaluation.nodes if n.actual is not None]
    assert {(a.numerator, a.computed_at, a.pending) for a in actuals} == {(D(0), None, False)}
    assert all(n.target is None for n in evaluation.nodes)
    assert evaluation.working_days == 21  # without A's closure


# --- GraphQL -------------------------------------------------------------------------------

TREE = """query($period: String!, $scope: ScopeInput, $treeId: ID, $comparison: Comparison) {
  kpiTree(period: $period, scope: $scope, treeId: $treeId, comparison: $comparison) {
    tree { id name isDefault }
    period { label } comparisonPeriod { label }
    nodes {
      id parentId kind depth label kpi { key }
      actual { value } target required requiredRounded basis attainment gap
      comparisonActual { value }
    }
    projectedKgi bottleneckNodeId headcount workingDays elapsedWorkingDays
  }
}"""

TREES = """{ kpiTrees { id name isDefault nodes { id parentId kind kpiKey label order } } }"""

ADD = """mutation($input: AddKpiTreeNodeInput!) {
  addKpiTreeNode(input: $input) {
    node { id parentId kind kpiKey label order } errors { code field message index }
  }
}"""

UPDATE = """mutation($input: UpdateKpiTreeNodeInput!) {
  updateKpiTreeNode(input: $input) {
    node { id parentId label order } errors { code field message index }
  }
}"""

REMOVE = """mutation($input: RemoveKpiTreeNodeInput!) {
  removeKpiTreeNode(input: $input) { removedCount errors { code field message index } }
}"""

CREATE = """mutation($input: CreateKpiTreeInput!) {
  createKpiTree(input: $input) {
    tree { id name isDefault nodes { kind kpiKey } } errors { code field message index }
  }
}"""


def gid(type_name: str, pk: Any) -> str:
    return to_base64(type_name, pk)


def test_kpi_tree_over_graphql(graphql: Any, tenant_a: Any, token_a: str) -> None:
    # given the article's plan, April's actuals and March's
    article_targets(tenant_a)
    april_actuals(tenant_a)
    snap(tenant_a, "2025-03", leads_created=200, meetings=40)
    # when
    _, body = graphql(TREE, {"period": "2025-04", "comparison": "PREVIOUS_PERIOD"}, token=token_a)
    # then
    result = body["data"]["kpiTree"]
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    assert result["tree"] == {
        "id": gid("KpiTree", tree.pk),
        "name": "標準KPIツリー",
        "isDefault": True,
    }
    assert (result["period"], result["comparisonPeriod"]) == (
        {"label": "2025-04"},
        {"label": "2025-03"},
    )
    nodes = {n["kpi"]["key"] if n["kpi"] else n["label"]: n for n in result["nodes"]}
    with tenant_context(tenant_a):
        leads_node = KpiTreeNode.objects.get(tree=tree, kpi_key="leads")
        ksf = leads_node.parent
    assert nodes["leads"] == {
        "id": gid("KpiTreeNode", leads_node.pk),
        "parentId": gid("KpiTreeNode", ksf.pk),
        "kind": "KPI",
        "depth": 2,
        "label": "リード数",
        "kpi": {"key": "leads"},
        "actual": {"value": "300.0000"},
        "target": None,
        "required": "400",
        "requiredRounded": 400,
        "basis": "DERIVED",
        "attainment": "0.7500",
        "gap": "-100.0000",
        "comparisonActual": {"value": "200.0000"},
    }
    assert nodes["opportunity_rate"] | {"id": None, "parentId": None} == {
        "id": None,
        "parentId": None,
        "kind": "KPI",
        "depth": 2,
        "label": "案件化率",
        "kpi": {"key": "opportunity_rate"},
        "actual": {"value": "45.4545"},
        "target": "50.0000",
        "required": "50",
        "requiredRounded": None,
        "basis": "TARGET",
        "attainment": "0.9091",
        "gap": "-4.5455",
        "comparisonActual": {"value": "0.0000"},  # March: 0 opportunities of 40 meetings
    }
    assert nodes["リード獲得数確保・活動量"]["actual"] is None
    assert result["projectedKgi"] == "9.0000"
    assert result["bottleneckNodeId"] == gid("KpiTreeNode", leads_node.pk)
    assert (result["headcount"], result["workingDays"], result["elapsedWorkingDays"]) == (
        0,
        21,
        None,
    )


def test_tenant_b_sees_only_its_own_default_tree(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_a: str, token_b: str
) -> None:
    tree_a = kpi_tree_ensure_default(tenant=tenant_a)
    tree_b = kpi_tree_ensure_default(tenant=tenant_b)
    kpi_tree_create(tenant=tenant_a, name="A only")
    _, body = graphql(TREES, token=token_b)
    assert [(t["id"], t["name"], t["isDefault"]) for t in body["data"]["kpiTrees"]] == [
        (gid("KpiTree", tree_b.pk), DEFAULT_TREE_NAME, True)
    ]
    assert len(body["data"]["kpiTrees"][0]["nodes"]) == 15
    # B's kpiTree without an id is B's tree; with A's id it is not found
    _, body = graphql(TREE, {"period": "2025-04"}, token=token_b)
    assert body["data"]["kpiTree"]["tree"]["id"] == gid("KpiTree", tree_b.pk)
    _, body = graphql(
        TREE, {"period": "2025-04", "treeId": gid("KpiTree", tree_a.pk)}, token=token_b
    )
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [
        ("NOT_FOUND", "KPI tree not found.")
    ]


def test_b_cannot_evaluate_for_a_team_of_a(graphql: Any, tenant_a: Any, token_b: str) -> None:
    team = TeamFactory(tenant=tenant_a, name="East")
    _, body = graphql(
        TREE,
        {"period": "2025-04", "scope": {"type": "TEAM", "id": gid("Team", team.pk)}},
        token=token_b,
    )
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


def test_default_tree_is_created_on_first_use(graphql: Any, tenant_a: Any, token_a: str) -> None:
    # given a tenant whose default tree was deleted
    with tenant_context(tenant_a):
        KpiTree.objects.all().delete()
    # when
    _, body = graphql(TREE, {"period": "2025-04"}, token=token_a)
    # then
    assert body["data"]["kpiTree"]["tree"]["name"] == DEFAULT_TREE_NAME
    assert len(body["data"]["kpiTree"]["nodes"]) == 15


def test_editing_a_tree_over_graphql(graphql: Any, tenant_a: Any, planner_token_a: str) -> None:
    # given a new empty tree
    _, body = graphql(
        CREATE, {"input": {"name": "Plan", "fromDefaultTemplate": False}}, token=planner_token_a
    )
    tree_id = body["data"]["createKpiTree"]["tree"]["id"]
    assert body["data"]["createKpiTree"]["tree"]["nodes"] == []
    # when a KGI, a KSF and a KPI are added
    _, body = graphql(
        ADD,
        {"input": {"treeId": tree_id, "kind": "KGI", "kpi": "won_deals"}},
        token=planner_token_a,
    )
    kgi = body["data"]["addKpiTreeNode"]["node"]
    _, body = graphql(
        ADD,
        {"input": {"treeId": tree_id, "kind": "KSF", "label": "質", "parentId": kgi["id"]}},
        token=planner_token_a,
    )
    ksf = body["data"]["addKpiTreeNode"]["node"]
    _, body = graphql(
        ADD,
        {"input": {"treeId": tree_id, "kind": "KPI", "kpi": "win_rate", "parentId": ksf["id"]}},
        token=planner_token_a,
    )
    rate = body["data"]["addKpiTreeNode"]["node"]
    assert rate | {"id": None} == {
        "id": None,
        "parentId": ksf["id"],
        "kind": "KPI",
        "kpiKey": "win_rate",
        "label": "",
        "order": 1,
    }
    # then a cycle is refused as a typed error
    _, body = graphql(
        UPDATE, {"input": {"id": ksf["id"], "parentId": rate["id"]}}, token=planner_token_a
    )
    assert body["data"]["updateKpiTreeNode"] == {
        "node": None,
        "errors": [
            {
                "code": "VALIDATION",
                "field": "parentId",
                "message": "A KSF goes under the KGI or another KSF.",
                "index": None,
            }
        ],
    }
    # and a rename works
    _, body = graphql(
        UPDATE, {"input": {"id": rate["id"], "label": "受注率 (IS)"}}, token=planner_token_a
    )
    assert body["data"]["updateKpiTreeNode"]["node"]["label"] == "受注率 (IS)"
    # and removing the KSF removes the KPI under it
    _, body = graphql(REMOVE, {"input": {"id": ksf["id"]}}, token=planner_token_a)
    assert body["data"]["removeKpiTreeNode"] == {"removedCount": 2, "errors": []}


def test_tree_edits_need_kpis_write_and_stay_in_the_tenant(
    graphql: Any, tenant_a: Any, token_a: str, planner_token_b: str
) -> None:
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    with tenant_context(tenant_a):
        kgi = KpiTreeNode.objects.get(tree=tree, kind="kgi")
    add = {
        "treeId": gid("KpiTree", tree.pk),
        "kind": "KPI",
        "kpi": "mqls",
        "parentId": gid("KpiTreeNode", kgi.pk),
    }
    # a read-only token is refused
    _, body = graphql(ADD, {"input": add}, token=token_a)
    assert [e["code"] for e in body["data"]["addKpiTreeNode"]["errors"]] == ["PERMISSION_DENIED"]
    # B cannot add to, change or remove A's nodes
    _, body = graphql(ADD, {"input": add}, token=planner_token_b)
    assert body["data"]["addKpiTreeNode"]["errors"] == [
        {"code": "NOT_FOUND", "field": "treeId", "message": "KPI tree not found.", "index": None}
    ]
    _, body = graphql(
        UPDATE, {"input": {"id": gid("KpiTreeNode", kgi.pk), "label": "x"}}, token=planner_token_b
    )
    assert [e["code"] for e in body["data"]["updateKpiTreeNode"]["errors"]] == ["NOT_FOUND"]
    _, body = graphql(REMOVE, {"input": {"id": gid("KpiTreeNode", kgi.pk)}}, token=planner_token_b)
    assert [e["code"] for e in body["data"]["removeKpiTreeNode"]["errors"]] == ["NOT_FOUND"]
    # nothing changed
    with tenant_context(tenant_a):
        assert KpiTreeNode.objects.filter(tree=tree).count() == 15
        assert KpiTreeNode.objects.get(pk=kgi.pk).label == ""


@pytest.mark.parametrize("extra", [0, 10])
def test_kpi_tree_api_query_count_is_constant(
    graphql: Any, tenant_a: Any, token_a: str, extra: int, django_assert_max_num_queries: Any
) -> None:
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    _grow(tenant_a, tree, extra)
    article_targets(tenant_a)
    april_actuals(tenant_a)
    with django_assert_max_num_queries(API_BUDGET[connection.vendor]):
        _, body = graphql(
            TREE, {"period": "2025-04", "comparison": "SAME_PERIOD_LAST_YEAR"}, token=token_a
        )
    assert "errors" not in body, body
    assert len(body["data"]["kpiTree"]["nodes"]) == 15 + extra


# --- admin ---------------------------------------------------------------------------------


def _inline_data(tree: KpiTree, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The change form of a tree with its node inline, as the browser posts it."""
    with tenant_context(tree.tenant_id):
        nodes = list(KpiTreeNode.objects.filter(tree=tree).order_by("parent_id", "order", "id"))
    data: dict[str, Any] = {
        "name": tree.name,
        "is_default": "on" if tree.is_default else "",
        "nodes-TOTAL_FORMS": str(len(nodes) + (1 if extra else 0)),
        "nodes-INITIAL_FORMS": str(len(nodes)),
        "nodes-MIN_NUM_FORMS": "0",
        "nodes-MAX_NUM_FORMS": "1000",
    }
    for index, node in enumerate(nodes):
        data |= {
            f"nodes-{index}-id": str(node.pk),
            f"nodes-{index}-tree": str(tree.pk),
            f"nodes-{index}-parent": "" if node.parent_id is None else str(node.parent_id),
            f"nodes-{index}-kind": node.kind,
            f"nodes-{index}-kpi_key": node.kpi_key,
            f"nodes-{index}-label": node.label,
            f"nodes-{index}-order": str(node.order),
        }
    if extra:
        index = len(nodes)
        data |= {f"nodes-{index}-tree": str(tree.pk)}
        fields = {"order": "1"} | extra
        data |= {f"nodes-{index}-{name}": value for name, value in fields.items()}
    return data


def test_admin_edits_a_tree_with_the_services_rules(
    client: Any, admin_a: Any, tenant_a: Any, tenant_b: Any
) -> None:
    # given A's admin, A's default tree and B's
    tree = kpi_tree_ensure_default(tenant=tenant_a)
    tree_b = kpi_tree_ensure_default(tenant=tenant_b)
    client.force_login(admin_a)
    url = f"/admin/kpis/kpitree/{tree.pk}/change/"
    assert client.get(url).status_code == 200
    assert client.get(f"/admin/kpis/kpitree/{tree_b.pk}/change/").status_code == 302
    with tenant_context(tenant_a):
        kgi = KpiTreeNode.objects.get(tree=tree, kind="kgi")
    # when a second KGI is posted, then the form is refused and nothing changes
    response = client.post(url, _inline_data(tree, {"kind": "kgi", "kpi_key": "revenue"}))
    assert response.status_code == 200
    assert "A tree has one KGI." in response.content.decode()
    # and an unknown KPI is refused
    response = client.post(
        url, _inline_data(tree, {"kind": "kpi", "kpi_key": "nope", "parent": str(kgi.pk)})
    )
    assert "KPI &#x27;nope&#x27; not found." in response.content.decode()
    with tenant_context(tenant_a):
        assert KpiTreeNode.objects.filter(tree=tree).count() == 15
    # when a valid KPI is added under the KGI, then it is saved in A's tree
    response = client.post(
        url,
        _inline_data(tree, {"kind": "kpi", "kpi_key": "mqls", "parent": str(kgi.pk), "order": 9}),
    )
    assert response.status_code == 302
    with tenant_context(tenant_a):
        added = KpiTreeNode.objects.get(tree=tree, kpi_key="mqls")
    assert (added.tenant_id, added.parent_id) == (tenant_a.pk, kgi.pk)


# --- on generated data -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_demo_tenant_plan_and_projection_match_independent_sums(tenant_a: Any) -> None:
    # given five months of demo data, rebuilt snapshots and only a KGI target for April
    seed_demo(tenant_slug="acme", leads=400, months=5, seed=7, today=dt.date(2026, 5, 20))
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    set_target(tenant_a, "won_deals", 12, label="2026-04")
    # when April is evaluated (finished)
    evaluation = evaluate(tenant_a, label="2026-04", today=dt.date(2026, 5, 20))
    nodes = by_key(evaluation)
    # then the rates come from January to March summed, computed here from the measures
    history = [parse_period(label) for label in ("2026-01", "2026-02", "2026-03")]
    april = parse_period("2026-04")
    with tenant_context(tenant_a):
        measures = measure_values(tenant=tenant_a, periods=[*history, april], scopes=[TENANT])
    total = {
        name: sum(measures[(p, TENANT)][name] for p in history)
        for name in ("leads_created", "meetings", "opportunities", "wins", "connects", "calls")
    }
    win = Fraction(total["wins"], total["opportunities"])
    opportunity = Fraction(total["opportunities"], total["meetings"])
    meeting = Fraction(total["meetings"], total["leads_created"])
    assert nodes["win_rate"].basis == RequiredBasis.HISTORY
    assert nodes["opportunities"].required_exact == 12 / win
    assert nodes["meetings_set"].required_exact == 12 / win / opportunity
    assert nodes["leads"].required_exact == 12 / win / opportunity / meeting
    connects = nodes["meetings_set"].required_exact * Fraction(total["connects"], total["meetings"])
    assert nodes["connects"].required_exact == connects
    assert nodes["calls"].required_exact == connects / Fraction(total["connects"], total["calls"])
    # and the projection of a finished month is leads x the month's three rates = its wins
    assert evaluation.projected_kgi == measures[(april, TENANT)]["wins"]
    assert evaluation.bottleneck is not None
    assert evaluation.bottleneck.node.kpi_key == "leads"  # the only driver with a target
