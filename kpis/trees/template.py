"""The default KGI → KSF → KPI tree template, and seeding a tenant's default tree from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from django.db import IntegrityError, transaction

from kpis.models import KpiTree, KpiTreeNode
from kpis.targets import reading_context
from tenants.models import Tenant

Kind = KpiTreeNode.Kind


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


def create_template_nodes(tenant: Tenant, tree: KpiTree, template: TemplateNode) -> None:
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
                create_template_nodes(tenant, tree, DEFAULT_TREE)
                return tree
        except IntegrityError:
            # TRICKY: two first uses raced; the other one's tree is committed and visible now.
            tree = KpiTree.objects.filter(is_default=True).first()
            if tree is None:
                raise
            return tree


def kpi_tree_default_with_nodes(*, tenant: Tenant) -> tuple[KpiTree, list[KpiTreeNode]]:
    """The tenant's default tree (created on first use) and its nodes, for an evaluation.

    One query when the tree has nodes (the nodes joined to their tree); an empty or missing
    default tree takes the usual path of kpi_tree_ensure_default.
    """
    with reading_context(tenant):
        nodes = list(
            KpiTreeNode.objects.filter(tree__is_default=True).select_related("tree").order_by()
        )
        if nodes:
            return nodes[0].tree, nodes
        tree = kpi_tree_ensure_default(tenant=tenant)
        return tree, list(KpiTreeNode.objects.filter(tree_id=tree.pk).order_by())


def kpi_tree_seed_default(tenant: Tenant) -> None:
    """Tenant-created hook: give a new tenant its default tree."""
    kpi_tree_ensure_default(tenant=tenant)
