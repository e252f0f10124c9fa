"""Reading what a tree evaluation needs in one PostgreSQL round trip (the ORM path takes five).

The nodes (joined to their tree and to the tenant's definitions of their KPIs), the
closures, the snapshot rows, the dirty days and the targets are five plain SELECTs sent in
one `execute`: Django's psycopg cursor binds parameters client-side and sends them as one
simple query, whose result sets `nextset` walks. Building the same queries with the ORM
costs more than running them (about 0.5 ms each against 0.1 ms). The rows come back typed
by psycopg as the ORM's do, and are assembled by the same functions as the ORM path's
(measures_from_rows, target_values_from_rows, kpi_definitions_from_rows), so both paths
give equal evaluations (tests/kpis/test_trees.py compares them).

Every statement filters on the tenant explicitly, and row-level security applies as well:
the caller is in the tenant's context (its transaction carries `app.tenant_id`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Model

from kpis.models import KpiCustomDefinition, KpiSnapshot, KpiTarget, KpiTree, KpiTreeNode
from kpis.periods import Period
from kpis.scopes import KpiScope
from kpis.selectors import SNAPSHOT_COLUMNS, measure_days
from kpis.targets import TARGET_VALUE_FIELDS
from pipeline.models import DirtyDay
from tenants.models import TenantClosure


@dataclass(frozen=True)
class TreeRows:
    """The rows of one evaluation's reads (nodes empty when the caller had them)."""

    tree: KpiTree | None  # the tree given, else the default tree (None: it has no nodes)
    nodes: list[KpiTreeNode]
    custom: list[KpiCustomDefinition]  # the tenant's definitions of the tree's KPI keys
    closures: set[date]
    snapshot_columns: tuple[str, ...]
    snapshots: list[tuple[Any, ...]]  # (grain, period_start, scope_type, scope_key, ...)
    dirty: set[date]
    targets: list[tuple[Any, ...]]  # TARGET_VALUE_FIELDS


def available() -> bool:
    """Whether this connection can send several statements in one execute."""
    # NOTE: server-side binding (an OPTIONS switch of Django's backend) sends the extended
    # protocol, which takes one statement: the evaluation then reads through the ORM.
    return connection.vendor == "postgresql" and not connection.settings_dict["OPTIONS"].get(
        "server_side_binding"
    )


def _table(model: type[Model]) -> str:
    return f'"{model._meta.db_table}"'


def _column(model: type[Model], alias: str, name: str) -> str:
    return f'{alias}."{model._meta.get_field(name).column}"'


def _fields(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def _attnames(model: type[Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


_NODE_FIELDS = _attnames(KpiTreeNode)
_TREE_FIELDS = _attnames(KpiTree)
_CUSTOM_FIELDS = _attnames(KpiCustomDefinition)


def _instance(model: type[Model], names: list[str], values: Sequence[Any]) -> Any:
    return model.from_db(connection.alias, names, values)


def tree_rows_read(
    *,
    tenant_id: int,
    tree: KpiTree | None,
    with_nodes: bool,
    periods: Sequence[Period],
    period: Period,
    scope: KpiScope,
) -> TreeRows:
    """The rows of an evaluation of `tree` (None: the default tree), in one round trip.

    `periods`: every period read (the evaluated one, its history, the comparison); the
    targets are read for `period` only. Without `with_nodes` the nodes are not read (the
    caller has them: `tree` must be given). The caller is in the tenant's context.
    """
    if tree is None and not with_nodes:
        raise ValueError("the default tree is read with its nodes")
    first, last = measure_days(periods)
    params = {
        "tenant": tenant_id,
        "tree": None if tree is None else tree.pk,
        "first": first,
        "last": last,
        "grains": sorted({p.grain for p in periods}),
        "starts": sorted({p.start for p in periods}),
        "grain": period.grain,
        "start": period.start,
        "scope_type": scope.type,
        "scope_key": scope.key,
    }
    sql, count = _statements(default_tree=tree is None, with_nodes=with_nodes)
    first_rows, closures, snapshots, dirty, targets = _execute(sql, count, params)
    nodes: list[KpiTreeNode] = []
    custom: dict[str, KpiCustomDefinition] = {}
    read_tree = tree
    if with_nodes:
        # Each node with its tree and, for a tenant KPI, its definition (else nulls).
        width, tree_width = len(_NODE_FIELDS), len(_TREE_FIELDS)
        if first_rows:
            read_tree = _instance(KpiTree, _TREE_FIELDS, first_rows[0][width : width + tree_width])
        for row in first_rows:
            node = _instance(KpiTreeNode, _NODE_FIELDS, row[:width])
            # As select_related("tree") would: the nodes' tree is the one read.
            KpiTreeNode.tree.field.set_cached_value(node, read_tree)
            nodes.append(node)
            definition = row[width + tree_width :]
            if definition[0] is not None:
                row_custom = _instance(KpiCustomDefinition, _CUSTOM_FIELDS, definition)
                custom[row_custom.key] = row_custom
    else:
        for definition in first_rows:
            row_custom = _instance(KpiCustomDefinition, _CUSTOM_FIELDS, definition)
            custom[row_custom.key] = row_custom
    return TreeRows(
        tree=read_tree,
        nodes=nodes,
        custom=[custom[key] for key in sorted(custom)],
        closures={day for (day,) in closures},
        snapshot_columns=SNAPSHOT_COLUMNS,
        snapshots=snapshots,
        dirty={day for (day,) in dirty},
        targets=targets,
    )


@functools.cache
def _statements(*, default_tree: bool, with_nodes: bool) -> tuple[str, int]:
    """The SQL of tree_rows_read and its number of statements, built once (named parameters)."""
    if with_nodes:
        # NOTE: the tenant's definitions of the nodes' KPIs are joined to the nodes rather
        # than read by a statement of their own: PostgreSQL plans one join faster than two
        # statements (about 0.1 ms).
        first = (
            f"SELECT {_fields(KpiTreeNode, 'n')}, {_fields(KpiTree, 't')},"
            f" {_fields(KpiCustomDefinition, 'k')}"
            f" FROM {_table(KpiTreeNode)} n JOIN {_table(KpiTree)} t"
            " ON t.id = n.tree_id AND t.tenant_id = %(tenant)s"
            f" LEFT JOIN {_table(KpiCustomDefinition)} k"
            " ON k.tenant_id = %(tenant)s AND k.key = n.kpi_key"
            " WHERE n.tenant_id = %(tenant)s AND "
            + ("t.is_default" if default_tree else "t.id = %(tree)s")
        )
    else:
        first = (
            f"SELECT {_fields(KpiCustomDefinition, 'k')} FROM {_table(KpiCustomDefinition)} k"
            " WHERE k.tenant_id = %(tenant)s AND k.key IN (SELECT n.kpi_key FROM"
            f" {_table(KpiTreeNode)} n WHERE n.tenant_id = %(tenant)s AND n.tree_id = %(tree)s)"
        )
    # NOTE: every snapshot column is read (5 rows at most): the measures needed depend on the
    # nodes, read in the same round trip, and a column costs psycopg next to nothing.
    statements = (
        first,
        f"SELECT c.date FROM {_table(TenantClosure)} c"
        " WHERE c.tenant_id = %(tenant)s AND c.date >= %(first)s AND c.date < %(last)s",
        "SELECT s.grain, s.period_start, s.scope_type, s.scope_key, s.computed_at, "
        + ", ".join(_column(KpiSnapshot, "s", name) for name in SNAPSHOT_COLUMNS)
        + f" FROM {_table(KpiSnapshot)} s WHERE s.tenant_id = %(tenant)s"
        " AND s.grain = ANY(%(grains)s) AND s.period_start = ANY(%(starts)s)"
        " AND s.scope_type = %(scope_type)s AND s.scope_key = %(scope_key)s",
        f"SELECT d.day FROM {_table(DirtyDay)} d"
        " WHERE d.tenant_id = %(tenant)s AND d.day >= %(first)s AND d.day < %(last)s",
        "SELECT "
        + ", ".join(_column(KpiTarget, "g", name) for name in TARGET_VALUE_FIELDS)
        + f" FROM {_table(KpiTarget)} g WHERE g.tenant_id = %(tenant)s AND g.grain = %(grain)s"
        " AND g.period_start = %(start)s AND g.scope_type = %(scope_type)s"
        " AND g.scope_key = %(scope_key)s",
    )
    return ";\n".join(statements), len(statements)


def _execute(sql: str, count: int, params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        results.append(cursor.fetchall())
        while cursor.nextset():
            results.append(cursor.fetchall())
    if len(results) != count:
        raise RuntimeError(f"{count} statements gave {len(results)} result sets")
    return results
