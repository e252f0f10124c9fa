"""KPI trees (KGI → KSF → KPI): the default template, editing services and the evaluation."""

from kpis.trees.decomposition import DECOMPOSITION, RequiredBasis
from kpis.trees.editing import (
    KEEP,
    kpi_tree_create,
    kpi_tree_delete,
    kpi_tree_node_add,
    kpi_tree_node_remove,
    kpi_tree_node_update,
    kpi_tree_node_validate,
    kpi_tree_update,
    kpi_trees,
)
from kpis.trees.evaluation import (
    NodeEvaluation,
    TreeEvaluation,
    kpi_tree_default_evaluate,
    kpi_tree_evaluate,
)
from kpis.trees.template import (
    DEFAULT_TREE,
    DEFAULT_TREE_NAME,
    TemplateNode,
    kpi_tree_default_with_nodes,
    kpi_tree_ensure_default,
    kpi_tree_seed_default,
)

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
    "kpi_tree_default_evaluate",
    "kpi_tree_default_with_nodes",
    "kpi_tree_delete",
    "kpi_tree_ensure_default",
    "kpi_tree_evaluate",
    "kpi_tree_node_add",
    "kpi_tree_node_remove",
    "kpi_tree_node_update",
    "kpi_tree_node_validate",
    "kpi_tree_seed_default",
    "kpi_tree_update",
    "kpi_trees",
]
