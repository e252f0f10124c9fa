"""KPI trees (KGI → KSF → KPI): the default template, editing services and the evaluation.

The KGI (won deals) decomposes multiplicatively, as data in `DECOMPOSITION`:
won_deals = opportunities x win_rate, opportunities = meetings_set x opportunity_rate,
meetings_set = leads x meeting_rate; below meetings the activity chain gives connects
(meetings x the historical connects per meeting), calls (connects ÷ connect_rate) and calls
per rep per working day (calls ÷ (headcount x working days)).

`kpi_tree_evaluate` returns, per node, the actual, the explicit target, the required value
(top-down 逆算 from the KGI target through each rate's target, else the tenant's own rate
over the previous three periods, else the article's reference), the attainment, and for the
tree the bottom-up projected KGI and the bottleneck driver. Required values are exact
fractions (shown as Decimals of 28 significant digits) and rounded up only when shown: the
ceiling of the exact value, never compounded ceilings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from kpis.calendars import count_working_days, days_off
from kpis.catalogue import KpiDefinition, Layer, Unit
from kpis.models import KpiTarget, KpiTree, KpiTreeNode
from kpis.periods import Period, local_date
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import KpiValue, kpi_definition, kpi_definitions, kpi_values
from kpis.targets import (
    as_decimal,
    history_fraction,
    history_periods,
    query_targets,
    reading_context,
)
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import Membership, Tenant
from tenants.scopes import Role

Kind = KpiTreeNode.Kind

# required(child) = required(parent) ÷ (rate ÷ 100), from the KGI down.
DECOMPOSITION: Final[dict[str, tuple[str, str]]] = {
    "won_deals": ("opportunities", "win_rate"),
    "opportunities": ("meetings_set", "opportunity_rate"),
    "meetings_set": ("leads", "meeting_rate"),
}
# The activity chain hangs below the meetings.
MEETINGS: Final = "meetings_set"
CONNECTS: Final = "connects"
CALLS: Final = "calls"
CONNECT_RATE: Final = "connect_rate"
CALLS_PER_REP_DAY: Final = "calls_per_rep_day"
ACTIVITY_CHAIN: Final[tuple[str, ...]] = (CONNECTS, CALLS, CONNECT_RATE, CALLS_PER_REP_DAY)

MAX_TREE_NODES = 100
MAX_TREES = 50
MAX_LABEL = 100
MAX_ORDER = 32767


class RequiredBasis(StrEnum):
    """Where a node's required value comes from."""

    TARGET = "target"  # an explicit target (the KGI's, or a rate's)
    HISTORY = "history"  # the tenant's own value over the previous three periods
    REFERENCE = "reference"  # the source article's reference value
    DERIVED = "derived"  # 逆算 from the KGI target through the rates


# --- the default template ----------------------------------------------------------------


@dataclass(frozen=True)
class TemplateNode:
    """A node of a tree template; KPI nodes take their label from the catalogue."""

    kind: str
    kpi_key: str = ""
    label: str = ""
    children: tuple[TemplateNode, ...] = ()


def _kpi(key: str) -> TemplateNode:
    return TemplateNode(Kind.KPI, key)


DEFAULT_TREE_NAME: Final = "標準KPIツリー"
# The article's tree: the KGI, then KSFs grouping the quality layer (rates of the later
# stages), the result layer (the stage counts and the meeting rate) and the volume layer
# (leads and the activities that make them meetings).
DEFAULT_TREE: Final = TemplateNode(
    Kind.KGI,
    "won_deals",
    children=(
        TemplateNode(
            Kind.KSF, label="商談の質向上", children=(_kpi("win_rate"), _kpi("opportunity_rate"))
        ),
        TemplateNode(
            Kind.KSF,
            label="商談数の確保",
            children=(_kpi("opportunities"), _kpi("meetings_set"), _kpi("meeting_rate")),
        ),
        TemplateNode(
            Kind.KSF,
            label="リード獲得数確保・活動量",
            children=(
                _kpi("leads"),
                _kpi("calls"),
                _kpi("connects"),
                _kpi("connect_rate"),
                _kpi("calls_per_rep_day"),
                _kpi("follow_ups_per_lead"),
            ),
        ),
    ),
)


def _create_nodes(tenant: Tenant, tree: KpiTree, template: TemplateNode) -> None:
    """Insert a template one level at a time (one bulk insert per depth)."""
    level: list[tuple[KpiTreeNode | None, TemplateNode, int]] = [(None, template, 1)]
    while level:
        rows = [
            KpiTreeNode(
                tenant=tenant,
                tree=tree,
                parent=parent,
                kind=spec.kind,
                kpi_key=spec.kpi_key,
                label=spec.label,
                order=order,
            )
            for parent, spec, order in level
        ]
        KpiTreeNode.objects.bulk_create(rows)
        level = [
            (row, child, index)
            for row, (_, spec, _) in zip(rows, level, strict=True)
            for index, child in enumerate(spec.children, start=1)
        ]


def _free_name(name: str) -> str:
    taken = set(KpiTree.objects.filter(name__startswith=name).values_list("name", flat=True))
    if name not in taken:
        return name
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"


def kpi_tree_ensure_default(*, tenant: Tenant) -> KpiTree:
    """The tenant's default tree, created from `DEFAULT_TREE` on first use."""
    with reading_context(tenant):
        tree = KpiTree.objects.filter(is_default=True).first()
        if tree is not None:
            return tree
        try:
            with transaction.atomic():
                tree = KpiTree.objects.create(
                    tenant=tenant, name=_free_name(DEFAULT_TREE_NAME), is_default=True
                )
                _create_nodes(tenant, tree, DEFAULT_TREE)
                return tree
        except IntegrityError:
            # TRICKY: two first uses raced; the other one's tree is committed and visible now.
            tree = KpiTree.objects.filter(is_default=True).first()
            if tree is None:
                raise
            return tree


def kpi_tree_seed_default(tenant: Tenant) -> None:
    """Tenant-created hook: give a new tenant its default tree."""
    kpi_tree_ensure_default(tenant=tenant)


def kpi_trees(*, tenant: Tenant) -> list[KpiTree]:
    """The tenant's trees (default first) with their nodes prefetched: two queries."""
    with reading_context(tenant):
        return list(KpiTree.objects.order_by("-is_default", "name").prefetch_related("nodes"))


# --- editing -----------------------------------------------------------------------------


def kpi_tree_create(
    *, tenant: Tenant, name: str, from_default_template: bool = False, is_default: bool = False
) -> KpiTree:
    """Create a tree, empty or from the default template; `is_default` makes it the default."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A tree needs a name.", field="name")
    if len(name) > MAX_LABEL:
        raise ValidationFailed(f"A tree name has at most {MAX_LABEL} characters.", field="name")
    with tenant_context(tenant):
        if KpiTree.objects.filter(name=name).exists():
            raise PublicError(
                f"A tree named {name!r} exists.", code=ErrorCode.CONFLICT, field="name"
            )
        if KpiTree.objects.count() >= MAX_TREES:
            raise ValidationFailed(f"A workspace has at most {MAX_TREES} trees.", field="name")
        if is_default:
            KpiTree.objects.filter(is_default=True).update(is_default=False)
        tree = KpiTree.objects.create(tenant=tenant, name=name, is_default=is_default)
        if from_default_template:
            _create_nodes(tenant, tree, DEFAULT_TREE)
        return tree


class _Keep:
    """The 'leave unchanged' marker of kpi_tree_node_update (None means 'no parent')."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


def _ancestor_ids(node_id: int | None, parents: dict[int, int | None]) -> Iterable[int]:
    seen: set[int] = set()
    while node_id is not None and node_id not in seen:
        seen.add(node_id)
        yield node_id
        node_id = parents.get(node_id)


def kpi_tree_node_validate(
    *,
    tenant: Tenant,
    tree: KpiTree,
    node: KpiTreeNode | None,
    kind: str,
    parent: KpiTreeNode | None,
    kpi_key: str,
    label: str,
    order: int | None,
) -> None:
    """The structural rules of a tree, for a new node (node=None) or a changed one.

    Call it in the tenant's context (the services do; so does the admin's request).
    """
    if kind not in Kind.values:
        raise ValidationFailed(f"Unknown node kind {kind!r}.", field="kind")
    if len(label) > MAX_LABEL:
        raise ValidationFailed(f"A label has at most {MAX_LABEL} characters.", field="label")
    if order is not None and not 0 <= order <= MAX_ORDER:
        raise ValidationFailed(f"order must be 0 to {MAX_ORDER}.", field="order")
    if parent is not None and parent.tree_id != tree.pk:
        raise ValidationFailed("The parent is a node of another tree.", field="parentId")
    others = KpiTreeNode.objects.filter(tree_id=tree.pk)
    if node is not None:
        others = others.exclude(pk=node.pk)
    if kind == Kind.KGI:
        if parent is not None:
            raise ValidationFailed("The KGI is the root of its tree.", field="parentId")
        if others.filter(kind=Kind.KGI).exists():
            raise ValidationFailed("A tree has one KGI.", field="kind")
    elif parent is None:
        raise ValidationFailed("Only the KGI is a root: give a parent.", field="parentId")
    if kind == Kind.KSF:
        if parent is not None and parent.kind not in (Kind.KGI, Kind.KSF):
            raise ValidationFailed("A KSF goes under the KGI or another KSF.", field="parentId")
        if kpi_key:
            raise ValidationFailed("A KSF groups KPIs and has no KPI of its own.", field="kpi")
        if not label.strip():
            raise ValidationFailed("A KSF needs a label.", field="label")
    else:
        if not kpi_key:
            raise ValidationFailed(f"A {kind.upper()} node needs a KPI.", field="kpi")
        kpi_definition(tenant=tenant, key=kpi_key, field="kpi")  # NotFound for unknown keys
    if node is not None and parent is not None:
        parents = dict(others.values_list("pk", "parent_id"))
        if node.pk in _ancestor_ids(parent.pk, parents):
            raise ValidationFailed(
                "A node cannot move under itself or one of its descendants.", field="parentId"
            )


def kpi_tree_node_add(
    *,
    tenant: Tenant,
    tree: KpiTree,
    parent: KpiTreeNode | None,
    kind: str,
    kpi_key: str = "",
    label: str = "",
    order: int | None = None,
) -> KpiTreeNode:
    """Add a node: one KGI root per tree, KSFs under the KGI or a KSF, KPIs under any node."""
    kpi_key, label = (kpi_key or "").strip(), (label or "").strip()
    with tenant_context(tenant):
        if tree.tenant_id != tenant.pk:
            raise NotFound("KPI tree", field="treeId")
        if parent is not None and parent.tenant_id != tenant.pk:
            raise NotFound("KPI tree node", field="parentId")
        kpi_tree_node_validate(
            tenant=tenant,
            tree=tree,
            node=None,
            kind=kind,
            parent=parent,
            kpi_key=kpi_key,
            label=label,
            order=order,
        )
        siblings = KpiTreeNode.objects.filter(tree_id=tree.pk)
        if siblings.count() >= MAX_TREE_NODES:
            raise ValidationFailed(f"A tree has at most {MAX_TREE_NODES} nodes.", field="treeId")
        if order is None:
            last = siblings.filter(parent=parent).aggregate(last=Max("order"))["last"]
            order = min(MAX_ORDER, (last or 0) + 1)
        return KpiTreeNode.objects.create(
            tenant=tenant,
            tree=tree,
            parent=parent,
            kind=kind,
            kpi_key=kpi_key,
            label=label,
            order=order,
        )


def kpi_tree_node_update(
    *,
    tenant: Tenant,
    node: KpiTreeNode,
    parent: KpiTreeNode | _Keep | None = KEEP,
    kpi_key: str | _Keep = KEEP,
    label: str | _Keep = KEEP,
    order: int | _Keep = KEEP,
) -> KpiTreeNode:
    """Change a node's parent (no cycles, same tree), KPI, label or order; kind is fixed."""
    with tenant_context(tenant):
        if node.tenant_id != tenant.pk:
            raise NotFound("KPI tree node", field="id")
        if isinstance(parent, KpiTreeNode) and parent.tenant_id != tenant.pk:
            raise NotFound("KPI tree node", field="parentId")
        new_parent = node.parent if isinstance(parent, _Keep) else parent
        new_key = node.kpi_key if isinstance(kpi_key, _Keep) else (kpi_key or "").strip()
        new_label = node.label if isinstance(label, _Keep) else (label or "").strip()
        new_order = node.order if isinstance(order, _Keep) else order
        kpi_tree_node_validate(
            tenant=tenant,
            tree=node.tree,
            node=node,
            kind=node.kind,
            parent=new_parent,
            kpi_key=new_key,
            label=new_label,
            order=new_order,
        )
        node.parent = new_parent
        node.kpi_key = new_key
        node.label = new_label
        node.order = new_order
        node.save(update_fields=["parent", "kpi_key", "label", "order"])
        return node


def kpi_tree_node_remove(*, tenant: Tenant, node: KpiTreeNode) -> int:
    """Remove a node and its subtree; returns the number of nodes removed."""
    with tenant_context(tenant):
        if node.tenant_id != tenant.pk:
            raise NotFound("KPI tree node", field="id")
        _, removed = node.delete()
        return removed.get(KpiTreeNode._meta.label, 0)


# --- evaluation --------------------------------------------------------------------------


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
    attainment: Decimal | None  # actual ÷ (target, else required for volumes); a ratio
    attainment_exact: Fraction | None
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

    @property
    def kgi(self) -> NodeEvaluation | None:
        return next((n for n in self.nodes if n.node.kind == Kind.KGI), None)


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


def _chain(kgi_key: str | None) -> list[tuple[str, str, str]]:
    """The decomposition steps (parent, child, rate) from the KGI down."""
    steps: list[tuple[str, str, str]] = []
    key = kgi_key
    while key in DECOMPOSITION and len(steps) < len(DECOMPOSITION):
        child, rate = DECOMPOSITION[key]
        steps.append((key, child, rate))
        key = child
    return steps


def _exact(value: KpiValue | None) -> Fraction | None:
    """A KPI value as an exact fraction (a rate from its numerator and denominator)."""
    if value is None:
        return None
    if value.kpi.is_rate:
        if not value.denominator:
            return None
        return Fraction(value.numerator) * value.kpi.multiplier / Fraction(value.denominator)
    return Fraction(value.numerator)


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


class _Evaluator:
    """The arithmetic of one evaluation over values already read."""

    def __init__(
        self,
        *,
        definitions: dict[str, KpiDefinition],
        values: dict[tuple[str, Period, KpiScope], KpiValue],
        targets: dict[tuple[str, Period, KpiScope], KpiTarget],
        period: Period,
        history: Sequence[Period],
        scope: KpiScope,
    ):
        self.definitions = definitions
        self.values = values
        self.targets = targets
        self.period = period
        self.history = history
        self.scope = scope

    def target(self, key: str) -> Decimal | None:
        row = self.targets.get((key, self.period, self.scope))
        return None if row is None else row.value

    def actual(self, key: str, period: Period | None = None) -> KpiValue | None:
        return self.values.get((key, period or self.period, self.scope))

    def history_sum(self, key: str) -> Fraction:
        return sum(
            (Fraction(self.values[(key, p, self.scope)].numerator) for p in self.history),
            Fraction(0),
        )

    def rate(self, key: str) -> tuple[Fraction | None, RequiredBasis | None]:
        """A rate's planning value: its target, else own history, else the reference."""
        kpi = self.definitions.get(key)
        if kpi is None:
            return None, None
        target = self.target(key)
        if target is not None:
            return Fraction(target), RequiredBasis.TARGET
        own = history_fraction(kpi, [self.values[(key, p, self.scope)] for p in self.history])
        if own is not None:
            return own, RequiredBasis.HISTORY
        if kpi.reference_value is not None:
            return Fraction(kpi.reference_value), RequiredBasis.REFERENCE
        return None, None

    def divide_by_rate(self, amount: Fraction | None, rate_key: str) -> Fraction | None:
        rate, _ = self.rate(rate_key)
        kpi = self.definitions.get(rate_key)
        if amount is None or not rate or kpi is None:
            return None
        return amount * kpi.multiplier / rate

    def derived(
        self, kgi_key: str | None, headcount: int, working_days: int
    ) -> dict[str, tuple[Fraction | None, RequiredBasis | None]]:
        """Required values 逆算 from the KGI target: the decomposition, then the activities."""
        if kgi_key is None or kgi_key not in self.definitions:
            return {}
        kgi_target = self.target(kgi_key)
        required: dict[str, Fraction | None] = {
            kgi_key: None if kgi_target is None else Fraction(kgi_target)
        }
        for parent, child, rate in _chain(kgi_key):
            required[child] = self.divide_by_rate(required[parent], rate)
        if MEETINGS in required:
            meetings = self.history_sum(MEETINGS)
            per_meeting = self.history_sum(CONNECTS) / meetings if meetings else None
            connects = required[MEETINGS]
            required[CONNECTS] = (
                None if connects is None or per_meeting is None else connects * per_meeting
            )
            required[CALLS] = self.divide_by_rate(required[CONNECTS], CONNECT_RATE)
            capacity = headcount * working_days
            calls = required[CALLS]
            required[CALLS_PER_REP_DAY] = (
                None if calls is None or not capacity else calls / capacity
            )
        result: dict[str, tuple[Fraction | None, RequiredBasis | None]] = {}
        for key, value in required.items():
            if value is None:
                result[key] = (None, None)
            elif key == kgi_key:
                result[key] = (value, RequiredBasis.TARGET)
            else:
                result[key] = (value, RequiredBasis.DERIVED)
        return result

    def projected(self, kgi_key: str | None) -> Fraction | None:
        """actual base volume x the actual rates of the chain (as fractions), unscaled."""
        steps = _chain(kgi_key)
        if not steps:
            return None
        value = _exact(self.actual(steps[-1][1]))
        for _, _, rate_key in reversed(steps):
            if value is None or value == 0:
                break  # a zero volume makes the rest of the chain zero
            rate = _exact(self.actual(rate_key))
            kpi = self.definitions[rate_key]
            value = None if rate is None else value * rate / kpi.multiplier
        return value


def _drivers(kgi_key: str | None) -> list[str]:
    """The decomposition's drivers, nearest the KGI first: its rates, then the base volume."""
    steps = _chain(kgi_key)
    if not steps:
        return []
    return [rate for _, _, rate in steps] + [steps[-1][1]]


def _scale(
    tenant: Tenant, period: Period, today: date, working_days: int
) -> tuple[Fraction | None, int | None]:
    """(factor, elapsed working days) for the projection: 1 for a finished period."""
    if period.end <= today:
        return Fraction(1), None
    if period.start > today:
        return None, 0
    elapsed = count_working_days(
        period.start, today + timedelta(days=1), days_off(tenant, period.start, period.end)
    )
    if elapsed == 0:
        return None, 0
    return Fraction(working_days, elapsed), elapsed


def kpi_tree_evaluate(
    *,
    tenant: Tenant,
    tree: KpiTree,
    period: Period,
    scope: KpiScope,
    comparison_period: Period | None = None,
    today: date | None = None,
) -> TreeEvaluation:
    """Evaluate a tree for a period and scope (see the module docstring).

    A constant number of queries whatever the tree's size: the nodes, the tenant's own KPI
    definitions (only if the tree uses some), one kpi_values call for every KPI x (period,
    comparison period, three history periods), the targets, and at most one each for the
    closures of a period in progress and the reps of the scope (when the previous period
    had no active rep). `today` (tenant-local) defaults to now in the tenant's time zone.
    """
    if tree.tenant_id != tenant.pk:
        raise NotFound("KPI tree", field="treeId")
    today = today or local_date(timezone.now(), tenant.timezone)
    history = history_periods(period)
    with reading_context(tenant):
        ordered = _preorder(list(KpiTreeNode.objects.filter(tree_id=tree.pk)))
        root = next((n for n, _ in ordered if n.kind == Kind.KGI and n.parent_id is None), None)
        kgi_key = root.kpi_key if root is not None else None
        needed = {node.kpi_key for node, _ in ordered if node.kpi_key}
        for parent, child, rate in _chain(kgi_key):
            needed.update((parent, child, rate))
        if MEETINGS in needed:
            needed.update((MEETINGS, *ACTIVITY_CHAIN))
        definitions = kpi_definitions(tenant=tenant, keys=sorted(needed))
        periods = [period, *history]
        if comparison_period is not None:
            periods.append(comparison_period)
        values = kpi_values(
            tenant=tenant,
            kpis=[*definitions.values(), _ACTIVE_REPS, _WORKING_DAYS],
            periods=periods,
            scopes=[scope],
        )
        targets = query_targets(periods=[period], scopes=[scope], kpi_keys=list(definitions))
        headcount = _headcount(values, history[0], scope)
        working_days = int(values[(_WORKING_DAYS.key, period, scope)].numerator)
        factor, elapsed = _scale(tenant, period, today, working_days)
    evaluator = _Evaluator(
        definitions=definitions,
        values=values,
        targets=targets,
        period=period,
        history=history,
        scope=scope,
    )
    derived = evaluator.derived(kgi_key, headcount, working_days)
    results: list[NodeEvaluation] = []
    for node, depth in ordered:
        kpi = definitions.get(node.kpi_key) if node.kpi_key else None
        results.append(_node_result(node, depth, kpi, evaluator, derived, comparison_period))
    projected = evaluator.projected(kgi_key)
    if projected is not None:
        projected = None if factor is None else projected * factor
    return TreeEvaluation(
        tree=tree,
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
    evaluator: _Evaluator,
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
    goal = Fraction(target) if target is not None else (required if volume else None)
    measured = _exact(actual)
    attainment = None if measured is None or not goal else measured / goal
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
        comparison_actual=(
            None if comparison_period is None else evaluator.actual(kpi.key, comparison_period)
        ),
    )


def _bottleneck(results: Sequence[NodeEvaluation], kgi_key: str | None) -> NodeEvaluation | None:
    """The driver node with the lowest attainment; ties go to the one nearest the KGI."""
    candidates: list[tuple[Fraction, int, NodeEvaluation]] = []
    for rank, key in enumerate(_drivers(kgi_key)):
        node = next((r for r in results if r.node.kind == Kind.KPI and r.node.kpi_key == key), None)
        if node is not None and node.attainment_exact is not None:
            candidates.append((node.attainment_exact, rank, node))
    if not candidates:
        return None
    return min(candidates, key=lambda item: (item[0], item[1]))[2]


__all__: list[str] = [
    "DECOMPOSITION",
    "DEFAULT_TREE",
    "DEFAULT_TREE_NAME",
    "KEEP",
    "NodeEvaluation",
    "RequiredBasis",
    "TemplateNode",
    "TreeEvaluation",
    "kpi_tree_create",
    "kpi_tree_ensure_default",
    "kpi_tree_evaluate",
    "kpi_tree_node_add",
    "kpi_tree_node_remove",
    "kpi_tree_node_update",
    "kpi_tree_node_validate",
    "kpi_trees",
]
