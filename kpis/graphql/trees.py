"""GraphQL API of KPI trees and targets: `kpiTree`, `kpiTrees`, `kpiTargets`, suggestions, edits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from kpis import targets as target_services
from kpis import trees as tree_services
from kpis.catalogue import KpiDefinition
from kpis.graphql.inputs import (
    Comparison,
    ScopeInput,
    comparison_period,
    parse_scope,
    resolve_period,
    resolve_scope,
)
from kpis.graphql.types import KpiDefinitionType, KpiScopeType, KpiValueType, PeriodType
from kpis.models import KpiTarget, KpiTree, KpiTreeNode
from kpis.numbers import shown
from kpis.periods import Period
from kpis.scopes import KpiScope
from kpis.selectors import kpi_definition, kpi_definitions
from kpis.trees import KEEP, NodeEvaluation, RequiredBasis, TreeEvaluation
from tenants.errors import PublicError, ValidationFailed
from tenants.graphql.base import given, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.errors import MutationError, mutation_error
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.models import Membership
from tenants.principal import PrincipalKind
from tenants.scopes import Scope

TREE: str = "KpiTree"
NODE: str = "KpiTreeNode"
TARGET: str = "KpiTarget"


def _gid(type_name: str, pk: Any) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


@strawberry.enum(name="KpiTreeNodeKind", description="KGI (the root), KSF (a group) or KPI.")
class KpiTreeNodeKind(Enum):
    KGI = "kgi"
    KSF = "ksf"
    KPI = "kpi"


RequiredBasisEnum = strawberry.enum(
    RequiredBasis,
    name="RequiredBasis",
    description=(
        "Where a required value comes from: TARGET (an explicit target), HISTORY (the "
        "tenant's own value over the previous three periods), REFERENCE (the source "
        "article's value) or DERIVED (逆算 from the KGI target through the rates)."
    ),
)


# --- structure -----------------------------------------------------------------------------


@strawberry.type(name="KpiTreeNode", description="A node of a KPI tree, as stored.")
class KpiTreeNodeType:
    id: strawberry.ID
    parent_id: strawberry.ID | None
    kind: KpiTreeNodeKind
    kpi_key: str | None = strawberry.field(description="Null for a KSF.")
    label: str = strawberry.field(description='The stored label; "" shows the KPI\'s name.')
    order: int

    @classmethod
    def from_node(cls, node: KpiTreeNode) -> KpiTreeNodeType:
        return cls(
            id=_gid(NODE, node.pk),
            parent_id=None if node.parent_id is None else _gid(NODE, node.parent_id),
            kind=KpiTreeNodeKind(node.kind),
            kpi_key=node.kpi_key or None,
            label=node.label,
            order=node.order,
        )


@strawberry.type(name="KpiTree", description="A KGI → KSF → KPI tree of the workspace.")
class KpiTreeType:
    id: strawberry.ID
    name: str
    is_default: bool
    created_at: datetime
    nodes: list[KpiTreeNodeType] = strawberry.field(description="Siblings by order.")

    @classmethod
    def from_tree(cls, tree: KpiTree, nodes: list[KpiTreeNode]) -> KpiTreeType:
        return cls(
            id=_gid(TREE, tree.pk),
            name=tree.name,
            is_default=tree.is_default,
            created_at=tree.created_at,
            nodes=[
                KpiTreeNodeType.from_node(n) for n in sorted(nodes, key=lambda n: (n.order, n.pk))
            ],
        )


# --- evaluation ----------------------------------------------------------------------------


@strawberry.type(name="KpiTreeNodeResult", description="A node of a tree evaluated for a period.")
class KpiTreeNodeResultType:
    id: strawberry.ID
    parent_id: strawberry.ID | None
    kind: KpiTreeNodeKind
    depth: int = strawberry.field(description="0 for the root.")
    order: int
    label: str = strawberry.field(description="The node's label, else the KPI's Japanese name.")
    kpi: KpiDefinitionType | None = strawberry.field(description="Null for a KSF.")
    actual: KpiValueType | None
    target: Decimal | None = strawberry.field(
        description="The explicit target of the period and scope (4 decimals)."
    )
    required: str | None = strawberry.field(
        description=(
            "Exact (to 28 significant digits): 逆算 from the KGI target for the volumes; the "
            "value planned with (target, own history or reference) for rates."
        )
    )
    required_rounded: int | None = strawberry.field(
        description="Ceiling of the exact required value, for the KGI and derived volumes."
    )
    basis: RequiredBasisEnum | None  # type: ignore[valid-type]
    attainment: Decimal | None = strawberry.field(
        description=(
            "actual ÷ target (the explicit target, else the plan's required value: the "
            "worked-back volume, or the rate the plan used, see basis), as a ratio rounded "
            "half up to 4 decimals; null when there is neither."
        )
    )
    gap: Decimal | None = strawberry.field(
        description=(
            "actual minus the value attainment is measured against (the explicit target, else "
            "the plan's required value), in the KPI's unit, rounded half up to 4 decimals: "
            "negative when short of it (leads 300 of 400 required: -100); null when there is "
            "neither or no actual."
        )
    )
    comparison_actual: KpiValueType | None = strawberry.field(
        description="The actual of the comparison period, when one was asked for."
    )

    @classmethod
    def from_result(cls, result: NodeEvaluation) -> KpiTreeNodeResultType:
        node = result.node
        return cls(
            id=_gid(NODE, node.pk),
            parent_id=None if node.parent_id is None else _gid(NODE, node.parent_id),
            kind=KpiTreeNodeKind(node.kind),
            depth=result.depth,
            order=node.order,
            label=result.label,
            kpi=None if result.kpi is None else KpiDefinitionType.from_definition(result.kpi),
            actual=None if result.actual is None else KpiValueType.from_value(result.actual),
            target=shown(result.target),
            required=_exact(result.required),
            required_rounded=result.required_rounded,
            basis=result.basis,
            attainment=shown(result.attainment),
            gap=shown(result.gap),
            comparison_actual=(
                None
                if result.comparison_actual is None
                else KpiValueType.from_value(result.comparison_actual)
            ),
        )


def _result_tree(root: KpiTreeResultType) -> KpiTreeType:
    # Built only when asked for: a tree's result is mostly read for its nodes.
    evaluation = root.evaluation
    return KpiTreeType.from_tree(evaluation.tree, [n.node for n in evaluation.nodes])


@strawberry.type(
    name="KpiTreeResult",
    description="A KPI tree evaluated for a period and scope: gaps, projection, bottleneck.",
)
class KpiTreeResultType:
    tree: KpiTreeType = strawberry.field(resolver=_result_tree)
    period: PeriodType
    comparison_period: PeriodType | None
    scope: KpiScopeType
    nodes: list[KpiTreeNodeResultType] = strawberry.field(
        description="Every node, depth first, siblings by order."
    )
    projected_kgi: Decimal | None = strawberry.field(
        description=(
            "Bottom-up: actual leads x meeting rate x opportunity rate x win rate, scaled by "
            "working days (total ÷ elapsed up to today) while the period is in progress."
        )
    )
    bottleneck_node_id: strawberry.ID | None = strawberry.field(
        description="The driver with the lowest attainment (ties: the one nearest the KGI)."
    )
    headcount: int = strawberry.field(
        description="Reps active in the previous period, else the scope's reps."
    )
    working_days: int
    elapsed_working_days: int | None = strawberry.field(
        description="Up to and including today, for a period in progress."
    )
    evaluation: strawberry.Private[TreeEvaluation]

    @classmethod
    def from_evaluation(cls, evaluation: TreeEvaluation) -> KpiTreeResultType:
        bottleneck = evaluation.bottleneck
        return cls(
            evaluation=evaluation,
            period=PeriodType.from_period(evaluation.period),
            comparison_period=(
                None
                if evaluation.comparison_period is None
                else PeriodType.from_period(evaluation.comparison_period)
            ),
            scope=KpiScopeType.from_scope(evaluation.scope),
            nodes=[KpiTreeNodeResultType.from_result(n) for n in evaluation.nodes],
            projected_kgi=shown(evaluation.projected_kgi),
            bottleneck_node_id=None if bottleneck is None else _gid(NODE, bottleneck.node.pk),
            headcount=evaluation.headcount,
            working_days=evaluation.working_days,
            elapsed_working_days=evaluation.elapsed_working_days,
        )


# --- targets -------------------------------------------------------------------------------


@strawberry.type(name="KpiTarget", description="A manager's target for a KPI, period and scope.")
class KpiTargetType:
    id: strawberry.ID
    kpi: KpiDefinitionType
    period: PeriodType
    scope: KpiScopeType
    value: Decimal
    set_by_id: strawberry.ID | None = strawberry.field(description="The Membership who set it.")
    updated_at: datetime

    @classmethod
    def from_target(
        cls, target: KpiTarget, kpi: KpiDefinition, period: Period, scope: KpiScope
    ) -> KpiTargetType:
        return cls(
            id=_gid(TARGET, target.pk),
            kpi=KpiDefinitionType.from_definition(kpi),
            period=PeriodType.from_period(period),
            scope=KpiScopeType.from_scope(scope),
            value=shown(target.value),  # type: ignore[arg-type]
            set_by_id=None if target.set_by_id is None else _gid("Membership", target.set_by_id),
            updated_at=target.updated_at,
        )


@strawberry.type(
    name="KpiTargetSuggestion",
    description="A suggested target: own trailing history (自社データ) beside the reference.",
)
class KpiTargetSuggestionType:
    kpi: KpiDefinitionType
    period: PeriodType
    scope: KpiScopeType
    own_value: Decimal | None = strawberry.field(
        description=(
            "The KPI over the previous three periods combined: rates from summed numerators "
            "and denominators, counts as the average per period; null without data."
        )
    )
    reference_value: Decimal | None
    reference_source: str
    history_periods: list[PeriodType]
    basis: str

    @classmethod
    def from_suggestion(cls, suggestion: target_services.Suggestion) -> KpiTargetSuggestionType:
        return cls(
            kpi=KpiDefinitionType.from_definition(suggestion.kpi),
            period=PeriodType.from_period(suggestion.period),
            scope=KpiScopeType.from_scope(suggestion.scope),
            own_value=shown(suggestion.own_value),
            reference_value=suggestion.reference_value,
            reference_source=suggestion.kpi.reference_source,
            history_periods=[
                PeriodType.from_period(p) for p in reversed(suggestion.history_periods)
            ],
            basis=suggestion.basis,
        )


def _tree(info: Info, global_id: relay.GlobalID, field: str) -> KpiTree:
    return resolve_global_id(
        info, global_id, model=KpiTree, type_name=TREE, what="KPI tree", field=field
    )


def _node(info: Info, global_id: relay.GlobalID, field: str) -> KpiTreeNode:
    return resolve_global_id(
        info, global_id, model=KpiTreeNode, type_name=NODE, what="KPI tree node", field=field
    )


@strawberry.type
class TreeQuery:
    @query(
        scope=Scope.KPIS_READ,
        description=(
            "A KPI tree evaluated for a period and scope: per node actual, target, required "
            "(逆算), attainment; the projected KGI and the bottleneck. The default tree when "
            "no treeId is given (created on first use)."
        ),
    )
    def kpi_tree(
        self,
        info: Info,
        period: str,
        scope: ScopeInput | None = None,
        tree_id: relay.GlobalID | None = None,
        comparison: Comparison | None = None,
    ) -> KpiTreeResultType:
        tenant = info.context.require_tenant()
        the_period = resolve_period(info, period)
        the_scope = resolve_scope(info, scope)
        compared = comparison_period(the_period, comparison)
        if tree_id is None:
            evaluation = tree_services.kpi_tree_default_evaluate(
                tenant=tenant, period=the_period, scope=the_scope, comparison_period=compared
            )
        else:
            evaluation = tree_services.kpi_tree_evaluate(
                tenant=tenant,
                tree=_tree(info, tree_id, "treeId"),
                period=the_period,
                scope=the_scope,
                comparison_period=compared,
            )
        return KpiTreeResultType.from_evaluation(evaluation)

    @query(scope=Scope.KPIS_READ, description="The workspace's KPI trees, the default first.")
    def kpi_trees(self, info: Info) -> list[KpiTreeType]:
        tenant = info.context.require_tenant()
        tree_services.kpi_tree_ensure_default(tenant=tenant)
        return [
            KpiTreeType.from_tree(tree, list(tree.nodes.all()))
            for tree in tree_services.kpi_trees(tenant=tenant)
        ]

    @query(
        scope=Scope.KPIS_READ,
        description="The targets of a period and scope, optionally of some KPIs.",
    )
    def kpi_targets(
        self,
        info: Info,
        period: str,
        scope: ScopeInput | None = None,
        kpis: list[str] | None = None,
    ) -> list[KpiTargetType]:
        tenant = info.context.require_tenant()
        if kpis is not None and len(kpis) > target_services.MAX_TARGET_KPIS:
            raise ValidationFailed(
                f"Ask for at most {target_services.MAX_TARGET_KPIS} KPIs.", field="kpis"
            )
        the_period = resolve_period(info, period)
        the_scope = resolve_scope(info, scope)
        found = target_services.kpi_targets(
            tenant=tenant, periods=[the_period], scopes=[the_scope], kpi_keys=kpis
        )
        definitions = kpi_definitions(tenant=tenant, keys=[key for key, _, _ in found])
        return [
            KpiTargetType.from_target(target, definitions[key], the_period, the_scope)
            for (key, _, _), target in sorted(found.items(), key=lambda item: item[0][0])
            if key in definitions
        ]

    @query(
        scope=Scope.KPIS_READ,
        description="A suggested target from the previous three periods, beside the reference.",
    )
    def kpi_target_suggestion(
        self, info: Info, kpi: str, period: str, scope: ScopeInput | None = None
    ) -> KpiTargetSuggestionType:
        tenant = info.context.require_tenant()
        definition = kpi_definition(tenant=tenant, key=kpi, field="kpi")
        suggestion = target_services.kpi_target_suggestion(
            tenant=tenant,
            kpi=definition,
            period=resolve_period(info, period),
            scope=resolve_scope(info, scope),
        )
        return KpiTargetSuggestionType.from_suggestion(suggestion)


# --- mutations -----------------------------------------------------------------------------


@strawberry.input(name="SetKpiTargetInput")
class SetKpiTargetInput:
    kpi: str
    period: str
    scope: ScopeInput | None = None
    value: Decimal | None = strawberry.field(
        default=None,
        description=(
            "At most 4 decimals, not negative, at most 100 for percentages; null (or "
            "omitted) clears the target."
        ),
    )


@strawberry.type(name="SetKpiTargetPayload")
class SetKpiTargetPayload(MutationPayload):
    target: KpiTargetType | None = strawberry.field(
        default=None, description="Null when the target was cleared or on error."
    )


@strawberry.type(name="SetKpiTargetsPayload")
class SetKpiTargetsPayload(MutationPayload):
    targets: list[KpiTargetType | None] = strawberry.field(
        default_factory=list,
        description="In the order sent, null where a target was cleared; empty on error.",
    )
    errors: list[MutationError] = strawberry.field(
        default_factory=list, description="Each invalid entry with its index; none was set."
    )


@strawberry.input(name="CreateKpiTreeInput")
class CreateKpiTreeInput:
    name: str
    from_default_template: bool = strawberry.field(
        default=True, description="Start from the article's tree; false gives an empty tree."
    )
    make_default: bool = False


@strawberry.type(name="CreateKpiTreePayload")
class CreateKpiTreePayload(MutationPayload):
    tree: KpiTreeType | None = None


@strawberry.input(name="UpdateKpiTreeInput", description="Only the fields sent are changed.")
class UpdateKpiTreeInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    make_default: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "true: kpiTree without treeId evaluates this tree from now on (the previous default "
            "stays as an ordinary tree). A default stops being one only when another is made "
            "the default, so false is refused."
        ),
    )


@strawberry.type(name="UpdateKpiTreePayload")
class UpdateKpiTreePayload(MutationPayload):
    tree: KpiTreeType | None = None


@strawberry.type(name="DeleteKpiTreePayload")
class DeleteKpiTreePayload(MutationPayload):
    deleted_id: relay.GlobalID | None = None
    removed_node_count: int = strawberry.field(default=0, description="The tree's nodes.")


@strawberry.input(name="AddKpiTreeNodeInput")
class AddKpiTreeNodeInput:
    tree_id: relay.GlobalID
    kind: KpiTreeNodeKind
    parent_id: relay.GlobalID | None = strawberry.field(default=None, description="Null: KGI.")
    kpi: str | None = strawberry.field(default=None, description="The KPI key (KGI, KPI).")
    label: str | None = strawberry.field(default=None, description="Required for a KSF.")
    order: int | None = strawberry.field(default=None, description="Last among siblings if null.")


@strawberry.input(
    name="UpdateKpiTreeNodeInput",
    description="Only the fields sent change; the kind is fixed (remove and add instead).",
)
class UpdateKpiTreeNodeInput:
    id: relay.GlobalID
    parent_id: relay.GlobalID | None = strawberry.UNSET
    kpi: str | None = strawberry.UNSET
    label: str | None = strawberry.UNSET
    order: int | None = strawberry.UNSET


@strawberry.type(name="KpiTreeNodePayload")
class KpiTreeNodePayload(MutationPayload):
    node: KpiTreeNodeType | None = None


@strawberry.input(name="RemoveKpiTreeNodeInput")
class RemoveKpiTreeNodeInput:
    id: relay.GlobalID


@strawberry.type(name="RemoveKpiTreeNodePayload")
class RemoveKpiTreeNodePayload(MutationPayload):
    removed_count: int = strawberry.field(default=0, description="The node and its descendants.")


def _acting_member(info: Info) -> Membership | None:
    principal = info.context.principal
    if principal.kind == PrincipalKind.USER:
        return principal.membership
    return None


@strawberry.type
class TreeMutation:
    @mutation(scope=Scope.KPIS_WRITE, description="Set the target of a KPI for a period and scope.")
    def set_kpi_target(self, info: Info, input: SetKpiTargetInput) -> SetKpiTargetPayload:
        tenant = info.context.require_tenant()
        period = resolve_period(info, input.period)
        scope = resolve_scope(info, input.scope)
        target = target_services.kpi_target_set(
            tenant=tenant,
            kpi_key=input.kpi,
            period=period,
            scope=scope,
            value=input.value,
            set_by=_acting_member(info),
        )
        if target is None:
            return SetKpiTargetPayload()
        kpi = kpi_definition(tenant=tenant, key=target.kpi_key)
        return SetKpiTargetPayload(target=KpiTargetType.from_target(target, kpi, period, scope))

    @mutation(
        scope=Scope.KPIS_WRITE,
        description=(
            "Set or clear many targets at once, all or none (at most "
            f"{target_services.MAX_TARGETS_PER_BATCH}): a month's targets for every rep, say."
        ),
    )
    def set_kpi_targets(self, info: Info, targets: list[SetKpiTargetInput]) -> SetKpiTargetsPayload:
        tenant = info.context.require_tenant()
        if not 1 <= len(targets) <= target_services.MAX_TARGETS_PER_BATCH:
            raise ValidationFailed(
                f"Send 1 to {target_services.MAX_TARGETS_PER_BATCH} targets at a time.",
                field="targets",
            )
        errors: list[MutationError] = []
        entries: list[target_services.TargetEntry] = []
        positions: list[int] = []
        for index, item in enumerate(targets):
            try:
                entries.append(
                    target_services.TargetEntry(
                        kpi_key=item.kpi,
                        period=resolve_period(info, item.period),
                        scope=parse_scope(item.scope),
                        value=item.value,
                    )
                )
                positions.append(index)
            except PublicError as error:
                errors.append(mutation_error(error, index=index))
        stored: list[KpiTarget | None] = []
        try:
            if errors:  # nothing is written: the other entries are only checked
                if entries:
                    target_services.kpi_targets_check(tenant=tenant, entries=entries)
            else:
                stored = target_services.kpi_targets_set(
                    tenant=tenant, entries=entries, set_by=_acting_member(info)
                )
        except target_services.TargetBatchInvalid as invalid:
            errors += [mutation_error(e, index=positions[i]) for i, e in invalid.errors]
        if errors:
            return SetKpiTargetsPayload(errors=sorted(errors, key=lambda e: e.index or 0))
        definitions = kpi_definitions(tenant=tenant, keys=[e.kpi_key for e in entries])
        return SetKpiTargetsPayload(
            targets=[
                None
                if target is None
                else KpiTargetType.from_target(
                    target, definitions[entry.kpi_key], entry.period, entry.scope
                )
                for entry, target in zip(entries, stored, strict=True)
            ]
        )

    @mutation(
        scope=Scope.KPIS_WRITE, description="Create a KPI tree, from the default template or empty."
    )
    def create_kpi_tree(self, info: Info, input: CreateKpiTreeInput) -> CreateKpiTreePayload:
        tenant = info.context.require_tenant()
        tree = tree_services.kpi_tree_create(
            tenant=tenant,
            name=input.name,
            from_default_template=input.from_default_template,
            is_default=input.make_default,
        )
        return CreateKpiTreePayload(
            tree=KpiTreeType.from_tree(tree, list(KpiTreeNode.objects.filter(tree=tree)))
        )

    @mutation(scope=Scope.KPIS_WRITE, description="Rename a KPI tree or make it the default tree.")
    def update_kpi_tree(self, info: Info, input: UpdateKpiTreeInput) -> UpdateKpiTreePayload:
        tenant = info.context.require_tenant()
        tree = _tree(info, input.id, "id")
        if given(input.name) and input.name is None:
            raise ValidationFailed("A tree needs a name.", field="name")
        if given(input.make_default) and not input.make_default:
            raise ValidationFailed(
                "A tree stops being the default when another is made the default.",
                field="makeDefault",
            )
        updated = tree_services.kpi_tree_update(
            tenant=tenant,
            tree=tree,
            name=input.name if given(input.name) else None,
            make_default=bool(given(input.make_default) and input.make_default),
        )
        return UpdateKpiTreePayload(
            tree=KpiTreeType.from_tree(updated, list(KpiTreeNode.objects.filter(tree=updated)))
        )

    @mutation(
        scope=Scope.KPIS_WRITE,
        description=(
            "Delete a KPI tree and its nodes. The default tree cannot be deleted: make another "
            "tree the default first. Targets belong to KPIs, not trees, and stay."
        ),
    )
    def delete_kpi_tree(self, info: Info, id: relay.GlobalID) -> DeleteKpiTreePayload:
        tenant = info.context.require_tenant()
        tree = _tree(info, id, "id")
        removed = tree_services.kpi_tree_delete(tenant=tenant, tree=tree)
        return DeleteKpiTreePayload(deleted_id=id, removed_node_count=removed)

    @mutation(scope=Scope.KPIS_WRITE, description="Add a KGI (root), KSF or KPI node to a tree.")
    def add_kpi_tree_node(self, info: Info, input: AddKpiTreeNodeInput) -> KpiTreeNodePayload:
        tenant = info.context.require_tenant()
        tree = _tree(info, input.tree_id, "treeId")
        parent = None if input.parent_id is None else _node(info, input.parent_id, "parentId")
        node = tree_services.kpi_tree_node_add(
            tenant=tenant,
            tree=tree,
            parent=parent,
            kind=input.kind.value,
            kpi_key=input.kpi or "",
            label=input.label or "",
            order=input.order,
        )
        return KpiTreeNodePayload(node=KpiTreeNodeType.from_node(node))

    @mutation(
        scope=Scope.KPIS_WRITE,
        description="Move a node (no cycles) or change its KPI, label or order.",
    )
    def update_kpi_tree_node(self, info: Info, input: UpdateKpiTreeNodeInput) -> KpiTreeNodePayload:
        tenant = info.context.require_tenant()
        node = _node(info, input.id, "id")
        changes: dict[str, Any] = {}
        if given(input.parent_id):
            changes["parent"] = (
                None if input.parent_id is None else _node(info, input.parent_id, "parentId")
            )
        if given(input.kpi):
            changes["kpi_key"] = input.kpi or ""
        if given(input.label):
            changes["label"] = input.label or ""
        if given(input.order):
            if input.order is None:
                raise ValidationFailed("order cannot be null.", field="order")
            changes["order"] = input.order
        updated = tree_services.kpi_tree_node_update(
            tenant=tenant,
            node=node,
            parent=changes.get("parent", KEEP),
            kpi_key=changes.get("kpi_key", KEEP),
            label=changes.get("label", KEEP),
            order=changes.get("order", KEEP),
        )
        return KpiTreeNodePayload(node=KpiTreeNodeType.from_node(updated))

    @mutation(scope=Scope.KPIS_WRITE, description="Remove a node and everything under it.")
    def remove_kpi_tree_node(
        self, info: Info, input: RemoveKpiTreeNodeInput
    ) -> RemoveKpiTreeNodePayload:
        tenant = info.context.require_tenant()
        node = _node(info, input.id, "id")
        removed = tree_services.kpi_tree_node_remove(tenant=tenant, node=node)
        return RemoveKpiTreeNodePayload(removed_count=removed)
