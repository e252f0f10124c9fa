"""Editing services of KPI trees: list, create, rename and delete trees, pick the default one,
add, change and remove nodes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from django.db import IntegrityError, transaction
from django.db.models import Max

from kpis.models import KpiTree, KpiTreeNode
from kpis.selectors import kpi_definition
from kpis.targets import reading_context
from kpis.trees.template import DEFAULT_TREE, create_template_nodes
from tenants.bounds import shown, text_check
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import Tenant

Kind = KpiTreeNode.Kind

MAX_TREE_NODES = 100
MAX_TREES = 50
MAX_LABEL = 100
MAX_ORDER = 32767


def kpi_trees(*, tenant: Tenant) -> list[KpiTree]:
    """The tenant's trees (default first) with their nodes prefetched: two queries."""
    with reading_context(tenant):
        return list(KpiTree.objects.order_by("-is_default", "name").prefetch_related("nodes"))


def _tree_name(name: str) -> str:
    text_check(name or "", field="name", max_length=MAX_LABEL, what="a tree name")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A tree needs a name.", field="name")
    if len(name) > MAX_LABEL:
        raise ValidationFailed(f"A tree name has at most {MAX_LABEL} characters.", field="name")
    return name


def _tree_name_taken(name: str) -> PublicError:
    return PublicError(f"A tree named {name!r} exists.", code=ErrorCode.CONFLICT, field="name")


def _lock_trees() -> None:
    """Lock every tree of the tenant in one order before the default moves: concurrent
    moves (a create or an update with make-default) then go through one after the other
    instead of clashing on the one-default constraint, and never deadlock."""
    list(KpiTree.objects.select_for_update().order_by("pk").values_list("pk"))


def kpi_tree_create(
    *, tenant: Tenant, name: str, from_default_template: bool = False, is_default: bool = False
) -> KpiTree:
    """Create a tree, empty or from the default template; `is_default` makes it the default."""
    name = _tree_name(name)
    with tenant_context(tenant):
        if KpiTree.objects.filter(name=name).exists():
            raise _tree_name_taken(name)
        if KpiTree.objects.count() >= MAX_TREES:
            raise ValidationFailed(f"A workspace has at most {MAX_TREES} trees.", field="name")
        if is_default:
            _lock_trees()
            KpiTree.objects.filter(is_default=True).update(is_default=False)
        tree = KpiTree.objects.create(tenant=tenant, name=name, is_default=is_default)
        if from_default_template:
            create_template_nodes(tenant, tree, DEFAULT_TREE)
        return tree


def kpi_tree_update(
    *, tenant: Tenant, tree: KpiTree, name: str | None = None, make_default: bool = False
) -> KpiTree:
    """Rename a tree and/or make it the tenant's default (the previous default stays, as an
    ordinary tree). A default tree stops being one only when another is made the default."""
    name = None if name is None else _tree_name(name)
    with tenant_context(tenant):
        if tree.tenant_id != tenant.pk:
            raise NotFound("KPI tree", field="id")
        if name is not None and KpiTree.objects.filter(name=name).exclude(pk=tree.pk).exists():
            raise _tree_name_taken(name)
        try:
            with transaction.atomic():
                if make_default:
                    _lock_trees()  # before the tree itself: one lock order for every move
                locked = KpiTree.objects.select_for_update().get(pk=tree.pk)
                fields = []
                if name is not None and name != locked.name:
                    locked.name = name
                    fields.append("name")
                if make_default and not locked.is_default:
                    KpiTree.objects.filter(is_default=True).update(is_default=False)
                    locked.is_default = True
                    fields.append("is_default")
                if fields:
                    locked.save(update_fields=fields)
        except IntegrityError as exc:  # the same name, or another default, committed meanwhile
            raise PublicError(
                "The tree changed meanwhile (its name or the default tree): try again.",
                code=ErrorCode.CONFLICT,
                field="name" if name is not None else "makeDefault",
            ) from exc
        return locked


def kpi_tree_delete(*, tenant: Tenant, tree: KpiTree) -> int:
    """Delete a tree that is not the default, with its nodes; returns how many nodes went.

    Targets belong to KPIs, periods and scopes, not to trees: they stay for the other trees.
    """
    with tenant_context(tenant):
        if tree.tenant_id != tenant.pk:
            raise NotFound("KPI tree", field="id")
        with transaction.atomic():
            locked = KpiTree.objects.select_for_update().filter(pk=tree.pk).first()
            if locked is None:
                raise NotFound("KPI tree", field="id")
            if locked.is_default:
                raise ValidationFailed(
                    "The default tree cannot be deleted: make another tree the default first.",
                    field="id",
                )
            _, removed = locked.delete()
        return removed.get(KpiTreeNode._meta.label, 0)


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
        raise ValidationFailed(f"Unknown node kind {shown(kind)}.", field="kind")
    text_check(label, field="label", max_length=MAX_LABEL, what="a label")
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
