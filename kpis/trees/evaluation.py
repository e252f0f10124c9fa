"""Evaluating a KPI tree for a period and scope: required values, attainment, projection.

`kpi_tree_evaluate` returns, per node, the actual, the explicit target, the required value
(top-down 逆算 from the KGI target through each rate's target, else the tenant's own rate
over the previous three periods, else the article's reference), the attainment, and for the
tree the bottom-up projected KGI and the bottleneck driver. Required values are exact
fractions (shown as Decimals of 28 significant digits) and rounded up only when shown: the
ceiling of the exact value, never compounded ceilings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final

from django.utils import timezone

from kpis.catalogue import KpiDefinition, Layer, Unit
from kpis.models import KpiTree, KpiTreeNode
from kpis.periods import Period, local_date
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import (
    KpiValue,
    kpi_definitions,
    kpi_definitions_from_rows,
    kpi_values,
    kpi_values_from_measures,
    measure_days,
    measures_from_rows,
    registered_keys,
    registered_rows,
    stock_levels,
)
from kpis.targets import (
    as_decimal,
    history_periods,
    query_target_values,
    reading_context,
    target_values_from_rows,
)
from kpis.trees import pg_reading
from kpis.trees.decomposition import (
    ACTIVITY_CHAIN,
    MEETINGS,
    Evaluator,
    RequiredBasis,
    chain,
    drivers,
    exact,
)
from kpis.trees.template import kpi_tree_default_with_nodes
from tenants.calendars import count_working_days, days_off, public_holidays
from tenants.errors import NotFound
from tenants.models import Membership, Tenant
from tenants.scopes import Role

Kind = KpiTreeNode.Kind


@dataclass(frozen=True)
class NodeEvaluation:
    """One node of an evaluated tree."""

    node: KpiTreeNode
    depth: int
    kpi: KpiDefinition | None  # None for KSF nodes (and a KPI no longer in the catalogue)
    actual: KpiValue | None
    target: Decimal | None  # the explicit target of the period and scope
    required: Decimal | None  # the exact value, to 28 significant digits
    required_exact: Fraction | None
    required_rounded: int | None  # ceil(required_exact) for KGI and derived volumes
    basis: RequiredBasis | None
    attainment: Decimal | None  # actual ÷ (target, else the plan's required value); a ratio
    attainment_exact: Fraction | None
    gap: Decimal | None  # actual minus the base of attainment: negative when short of it
    comparison_actual: KpiValue | None

    @property
    def label(self) -> str:
        if self.node.label:
            return self.node.label
        return self.kpi.name_ja if self.kpi is not None else self.node.kpi_key


@dataclass(frozen=True)
class TreeEvaluation:
    """A tree evaluated for a period and scope."""

    tree: KpiTree
    period: Period
    scope: KpiScope
    comparison_period: Period | None
    nodes: tuple[NodeEvaluation, ...]  # depth first, siblings by order
    projected_kgi: Decimal | None
    bottleneck: NodeEvaluation | None
    headcount: int
    working_days: int
    elapsed_working_days: int | None  # only for a period in progress


def _measure(key: str) -> KpiDefinition:
    # A raw measure read through kpi_values, so the tree needs one kpi_values call in all.
    return KpiDefinition(f"_{key}", key, key, "", Layer.VOLUME, key, builtin=False)


_ACTIVE_REPS: Final = _measure("active_reps")
_WORKING_DAYS: Final = _measure("working_days")


def _preorder(nodes: Sequence[KpiTreeNode]) -> list[tuple[KpiTreeNode, int]]:
    children: dict[int | None, list[KpiTreeNode]] = {}
    ids = {node.pk for node in nodes}
    for node in nodes:
        parent = node.parent_id if node.parent_id in ids else None
        children.setdefault(parent, []).append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: (n.order, n.pk))
    ordered: list[tuple[KpiTreeNode, int]] = []
    stack = [(node, 0) for node in reversed(children.get(None, []))]
    while stack:
        node, depth = stack.pop()
        ordered.append((node, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(node.pk, [])))
    return ordered


def _ceil(value: Fraction | None) -> int | None:
    return None if value is None else math.ceil(value)


def _headcount(
    values: dict[tuple[str, Period, KpiScope], KpiValue], previous: Period, scope: KpiScope
) -> int:
    active = int(values[(_ACTIVE_REPS.key, previous, scope)].numerator)
    if active:
        return active
    if scope.type == ScopeType.REP:
        return 1
    reps = Membership.objects.filter(role=Role.REP, is_active=True)
    if scope.type == ScopeType.TEAM:
        reps = reps.filter(team_id=int(scope.key) if scope.key.isdigit() else None)
    return reps.count()


def _scale(
    period: Period, today: date, working_days: int, off: set[date]
) -> tuple[Fraction | None, int | None]:
    """(factor, elapsed working days) for the projection: 1 for a finished period."""
    if period.end <= today:
        return Fraction(1), None
    if period.start > today:
        return None, 0
    elapsed = count_working_days(period.start, today + timedelta(days=1), off)
    if elapsed == 0:
        return None, 0
    return Fraction(working_days, elapsed), elapsed


@dataclass(frozen=True)
class _Inputs:
    """What an evaluation reads, whichever path read it."""

    tree: KpiTree
    ordered: list[tuple[KpiTreeNode, int]]
    kgi_key: str | None
    definitions: dict[str, KpiDefinition]
    off: set[date]
    values: dict[tuple[str, Period, KpiScope], KpiValue]
    targets: dict[tuple[str, Period, KpiScope], Decimal]


def _structure(
    nodes: Sequence[KpiTreeNode],
) -> tuple[list[tuple[KpiTreeNode, int]], str | None, list[str]]:
    """The nodes depth first, the KGI's key, and every KPI key the evaluation reads."""
    ordered = _preorder(nodes)
    root = next((n for n, _ in ordered if n.kind == Kind.KGI and n.parent_id is None), None)
    kgi_key = root.kpi_key if root is not None else None
    needed = {node.kpi_key for node, _ in ordered if node.kpi_key}
    for parent, child, rate in chain(kgi_key):
        needed.update((parent, child, rate))
    if MEETINGS in needed:
        needed.update((MEETINGS, *ACTIVITY_CHAIN))
    return ordered, kgi_key, sorted(needed)


def _periods(period: Period, comparison_period: Period | None) -> list[Period]:
    """Every period an evaluation reads: the period, its history, the comparison period."""
    periods = [period, *history_periods(period)]
    if comparison_period is not None:
        periods.append(comparison_period)
    return periods


def _read(
    tenant: Tenant,
    tree: KpiTree,
    nodes: Sequence[KpiTreeNode] | None,
    periods: Sequence[Period],
    scope: KpiScope,
) -> _Inputs:
    """The inputs through the ORM (any database): five queries, the nodes' included."""
    if nodes is None:
        nodes = list(KpiTreeNode.objects.filter(tree_id=tree.pk).order_by())
    ordered, kgi_key, needed = _structure(nodes)
    definitions = kpi_definitions(tenant=tenant, keys=needed)
    # Read once for the working days of every period and the elapsed ones of this one.
    off = days_off(tenant, *measure_days(periods))
    values = kpi_values(
        tenant=tenant,
        kpis=[*definitions.values(), _ACTIVE_REPS, _WORKING_DAYS],
        periods=periods,
        scopes=[scope],
        off_days=off,
    )
    targets = query_target_values(periods=periods[:1], scopes=[scope], kpi_keys=list(definitions))
    return _Inputs(tree, ordered, kgi_key, definitions, off, values, targets)


def _from_rows(
    tenant: Tenant,
    tree: KpiTree,
    nodes: Sequence[KpiTreeNode],
    rows: pg_reading.TreeRows,
    periods: Sequence[Period],
    scope: KpiScope,
) -> _Inputs:
    """The inputs from pg_reading's rows, assembled as the ORM path assembles its own."""
    ordered, kgi_key, needed = _structure(nodes)
    definitions = kpi_definitions_from_rows(keys=needed, custom=rows.custom)
    kpis = [*definitions.values(), _ACTIVE_REPS, _WORKING_DAYS]
    measures = {measure for kpi in kpis for measure in kpi.measures}
    first, last = measure_days(periods)
    off = public_holidays(tenant.holiday_country, first, last) | rows.closures
    # NOTE: the stock is a sum over the scope's day rows, read only for a tree that shows it.
    stocks = (
        stock_levels(scopes=[scope], ends=[p.end for p in periods])
        if "weighted_pipeline" in measures
        else {}
    )
    # NOTE: registered (app) measures are one more query, only for a tree that names one.
    registered = registered_rows(periods=periods, scopes=[scope], keys=registered_keys(measures))
    values = kpi_values_from_measures(
        kpis=kpis,
        measures=measures_from_rows(
            periods=periods,
            scopes=[scope],
            needed=measures,
            row_columns=rows.snapshot_columns,
            rows=rows.snapshots,
            stocks=stocks,
            off=off,
            dirty=rows.dirty,
            rebuilding=tenant.kpi_rebuild_requested_at is not None,
            registered=registered,
        ),
    )
    targets = target_values_from_rows(
        periods=periods[:1], scopes=[scope], kpi_keys=definitions, rows=rows.targets
    )
    return _Inputs(tree, ordered, kgi_key, definitions, off, values, targets)


def kpi_tree_evaluate(
    *,
    tenant: Tenant,
    tree: KpiTree,
    period: Period,
    scope: KpiScope,
    comparison_period: Period | None = None,
    today: date | None = None,
    nodes: Sequence[KpiTreeNode] | None = None,
) -> TreeEvaluation:
    """Evaluate a tree for a period and scope (see the module docstring).

    A constant number of queries whatever the tree's size. On PostgreSQL one round trip
    (pg_reading) reads the nodes (unless the caller passes the tree's `nodes`), the tenant's
    definitions of their KPIs, the closures over all the periods, the snapshots of every
    period (the period, the comparison period, three history periods), the dirty days and
    the targets. Elsewhere the ORM reads the same in five queries. Both add the weighted
    pipeline's stock when the tree shows it, and the reps of the scope when the previous
    period had no active rep. `today` (tenant-local) defaults to now in the tenant's time zone.
    """
    if tree.tenant_id != tenant.pk:
        raise NotFound("KPI tree", field="treeId")
    if nodes is not None and any(node.tree_id != tree.pk for node in nodes):
        raise ValueError("nodes must be the nodes of the evaluated tree")
    periods = _periods(period, comparison_period)
    with reading_context(tenant):
        if pg_reading.available():
            rows = pg_reading.tree_rows_read(
                tenant_id=tenant.pk,
                tree=tree,
                with_nodes=nodes is None,
                periods=periods,
                period=period,
                scope=scope,
            )
            given = rows.nodes if nodes is None else nodes
            inputs = _from_rows(tenant, tree, given, rows, periods, scope)
        else:
            inputs = _read(tenant, tree, nodes, periods, scope)
        return _evaluate(tenant, inputs, periods, scope, comparison_period, today)


def kpi_tree_default_evaluate(
    *,
    tenant: Tenant,
    period: Period,
    scope: KpiScope,
    comparison_period: Period | None = None,
    today: date | None = None,
) -> TreeEvaluation:
    """kpi_tree_evaluate of the tenant's default tree (created on first use).

    On PostgreSQL the tree and its nodes come in the evaluation's one round trip.
    """
    periods = _periods(period, comparison_period)
    if pg_reading.available():
        with reading_context(tenant):
            rows = pg_reading.tree_rows_read(
                tenant_id=tenant.pk,
                tree=None,
                with_nodes=True,
                periods=periods,
                period=period,
                scope=scope,
            )
            if rows.tree is not None and rows.nodes:
                inputs = _from_rows(tenant, rows.tree, rows.nodes, rows, periods, scope)
                return _evaluate(tenant, inputs, periods, scope, comparison_period, today)
    # No default tree yet, or one without nodes (or not PostgreSQL): the usual path.
    tree, nodes = kpi_tree_default_with_nodes(tenant=tenant)
    return kpi_tree_evaluate(
        tenant=tenant,
        tree=tree,
        period=period,
        scope=scope,
        comparison_period=comparison_period,
        today=today,
        nodes=nodes,
    )


def _evaluate(
    tenant: Tenant,
    inputs: _Inputs,
    periods: Sequence[Period],
    scope: KpiScope,
    comparison_period: Period | None,
    today: date | None,
) -> TreeEvaluation:
    """The arithmetic over the inputs; in the tenant's context (the headcount may read)."""
    period, history = periods[0], tuple(periods[1:4])
    today = today or local_date(timezone.now(), tenant.timezone)
    values, kgi_key = inputs.values, inputs.kgi_key
    headcount = _headcount(values, history[0], scope)
    working_days = int(values[(_WORKING_DAYS.key, period, scope)].numerator)
    factor, elapsed = _scale(period, today, working_days, inputs.off)
    evaluator = Evaluator(
        definitions=inputs.definitions,
        values=values,
        targets=inputs.targets,
        period=period,
        history=history,
        scope=scope,
    )
    derived = evaluator.derived(kgi_key, headcount, working_days)
    results: list[NodeEvaluation] = []
    for node, depth in inputs.ordered:
        kpi = inputs.definitions.get(node.kpi_key) if node.kpi_key else None
        results.append(_node_result(node, depth, kpi, evaluator, derived, comparison_period))
    projected = evaluator.projected(kgi_key)
    if projected is not None:
        projected = None if factor is None else projected * factor
    return TreeEvaluation(
        tree=inputs.tree,
        period=period,
        scope=scope,
        comparison_period=comparison_period,
        nodes=tuple(results),
        projected_kgi=as_decimal(projected),
        bottleneck=_bottleneck(results, kgi_key),
        headcount=headcount,
        working_days=working_days,
        elapsed_working_days=elapsed,
    )


def _node_result(
    node: KpiTreeNode,
    depth: int,
    kpi: KpiDefinition | None,
    evaluator: Evaluator,
    derived: dict[str, tuple[Fraction | None, RequiredBasis | None]],
    comparison_period: Period | None,
) -> NodeEvaluation:
    if kpi is None or node.kind == Kind.KSF:
        return NodeEvaluation(
            node=node,
            depth=depth,
            kpi=kpi,
            actual=None,
            target=None,
            required=None,
            required_exact=None,
            required_rounded=None,
            basis=None,
            attainment=None,
            attainment_exact=None,
            gap=None,
            comparison_actual=None,
        )
    actual = evaluator.actual(kpi.key)
    target = evaluator.target(kpi.key)
    volume = kpi.key in derived
    if volume:
        required, basis = derived[kpi.key]
    elif kpi.is_rate:
        required, basis = evaluator.rate(kpi.key)
    else:
        required, basis = None, None
    rounded = (
        _ceil(required)
        if volume and basis is not None and kpi.unit in (Unit.COUNT, Unit.RATIO)
        else None
    )
    # NOTE: a driver without a target of its own is measured against the plan's value (the
    # required volume, or the rate the plan worked back with: own history or the article's
    # reference), so that projected KGI ÷ KGI target stays the product of the attainments.
    goal = Fraction(target) if target is not None else required
    measured = exact(actual)
    attainment = None if measured is None or not goal else measured / goal
    gap = None if measured is None or goal is None else measured - goal
    return NodeEvaluation(
        node=node,
        depth=depth,
        kpi=kpi,
        actual=actual,
        target=target,
        required=as_decimal(required),
        required_exact=required,
        required_rounded=rounded,
        basis=basis,
        attainment=as_decimal(attainment),
        attainment_exact=attainment,
        gap=as_decimal(gap),
        comparison_actual=(
            None if comparison_period is None else evaluator.actual(kpi.key, comparison_period)
        ),
    )


def _bottleneck(results: Sequence[NodeEvaluation], kgi_key: str | None) -> NodeEvaluation | None:
    """The driver node with the lowest attainment; ties go to the one nearest the KGI."""
    candidates: list[tuple[Fraction, int, NodeEvaluation]] = []
    for rank, key in enumerate(drivers(kgi_key)):
        node = next((r for r in results if r.node.kind == Kind.KPI and r.node.kpi_key == key), None)
        if node is not None and node.attainment_exact is not None:
            candidates.append((node.attainment_exact, rank, node))
    if not candidates:
        return None
    return min(candidates, key=lambda item: (item[0], item[1]))[2]
