"""Managing whole KPI trees: rename one, make one the default, delete one (services and API)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections, transaction
from strawberry.relay import to_base64

from kpis.models import KpiTarget, KpiTree, KpiTreeNode
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from kpis.trees import kpi_tree_create, kpi_tree_delete, kpi_tree_ensure_default, kpi_tree_update
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed

UPDATE = """mutation($input: UpdateKpiTreeInput!) {
  updateKpiTree(input: $input) {
    tree { id name isDefault nodes { kind } } errors { code field message }
  }
}"""
DELETE = """mutation($id: ID!) {
  deleteKpiTree(id: $id) { deletedId removedNodeCount errors { code field message } }
}"""
TREES = "query { kpiTrees { id name isDefault } }"
EVALUATED = 'query { kpiTree(period: "2026-04") { tree { id name } nodes { kind } } }'


def gid(pk: int) -> str:
    return to_base64("KpiTree", pk)


def trees(tenant: Any) -> set[tuple[str, bool, int]]:
    """Each tree of the tenant: (name, is default, node count)."""
    with tenant_context(tenant):
        return {
            (tree.name, tree.is_default, KpiTreeNode.objects.filter(tree=tree).count())
            for tree in KpiTree.objects.all()
        }


def test_make_default_moves_the_default_and_kpi_tree_follows(
    graphql: Any, tenant_a: Any, planner_token_a: str
) -> None:
    # given the article's default tree and an empty second one
    first = kpi_tree_ensure_default(tenant=tenant_a)
    second = kpi_tree_create(tenant=tenant_a, name="Small plan")
    # when the second is renamed and made the default
    _, body = graphql(
        UPDATE,
        {"input": {"id": gid(second.pk), "name": "  Lean plan ", "makeDefault": True}},
        token=planner_token_a,
    )
    # then it is the one default, renamed (trimmed), and the first stays as an ordinary tree
    assert body["data"]["updateKpiTree"] == {
        "tree": {"id": gid(second.pk), "name": "Lean plan", "isDefault": True, "nodes": []},
        "errors": [],
    }
    assert trees(tenant_a) == {(first.name, False, 15), ("Lean plan", True, 0)}
    # and kpiTree without a treeId now evaluates it
    _, body = graphql(EVALUATED, token=planner_token_a)
    assert body["data"]["kpiTree"] == {
        "tree": {"id": gid(second.pk), "name": "Lean plan"},
        "nodes": [],
    }
    # and making the first the default again moves it back; a rename alone keeps the default
    _, body = graphql(
        UPDATE, {"input": {"id": gid(first.pk), "makeDefault": True}}, token=planner_token_a
    )
    assert body["data"]["updateKpiTree"]["tree"]["isDefault"] is True
    _, body = graphql(
        UPDATE, {"input": {"id": gid(first.pk), "name": "Main"}}, token=planner_token_a
    )
    assert body["data"]["updateKpiTree"]["tree"] | {"nodes": None} == {
        "id": gid(first.pk),
        "name": "Main",
        "isDefault": True,
        "nodes": None,
    }
    assert trees(tenant_a) == {("Lean plan", False, 0), ("Main", True, 15)}


@pytest.mark.parametrize(
    ("change", "code", "field", "message"),
    [
        ({"name": "Taken"}, "CONFLICT", "name", "A tree named 'Taken' exists."),
        ({"name": "   "}, "VALIDATION", "name", "A tree needs a name."),
        ({"name": None}, "VALIDATION", "name", "A tree needs a name."),
        ({"name": "x" * 101}, "VALIDATION", "name", "A tree name has at most 100 characters."),
        (
            {"makeDefault": False},
            "VALIDATION",
            "makeDefault",
            "A tree stops being the default when another is made the default.",
        ),
    ],
)
def test_a_bad_update_is_a_typed_error_and_changes_nothing(
    graphql: Any,
    tenant_a: Any,
    planner_token_a: str,
    change: dict,
    code: str,
    field: str,
    message: str,
) -> None:
    default = kpi_tree_ensure_default(tenant=tenant_a)
    kpi_tree_create(tenant=tenant_a, name="Taken")
    before = trees(tenant_a)
    _, body = graphql(UPDATE, {"input": {"id": gid(default.pk), **change}}, token=planner_token_a)
    assert body["data"]["updateKpiTree"] == {
        "tree": None,
        "errors": [{"code": code, "field": field, "message": message}],
    }
    assert trees(tenant_a) == before


def test_delete_removes_a_tree_and_its_nodes_but_never_the_default_nor_targets(
    graphql: Any, tenant_a: Any, planner_token_a: str
) -> None:
    # given the default tree, a copy of the template and a target on a KPI both trees show
    default = kpi_tree_ensure_default(tenant=tenant_a)
    copy = kpi_tree_create(tenant=tenant_a, name="Copy", from_default_template=True)
    kpi_target_set(
        tenant=tenant_a,
        kpi_key="won_deals",
        period=parse_period("2026-04"),
        scope=KpiScope.tenant(),
        value=Decimal(10),
        set_by=None,
    )
    # when the copy is deleted
    _, body = graphql(DELETE, {"id": gid(copy.pk)}, token=planner_token_a)
    # then it and its 15 nodes are gone, and the target stays
    assert body["data"]["deleteKpiTree"] == {
        "deletedId": gid(copy.pk),
        "removedNodeCount": 15,
        "errors": [],
    }
    assert trees(tenant_a) == {(default.name, True, 15)}
    with tenant_context(tenant_a):
        assert KpiTarget.objects.count() == 1
    # and deleting it again is NOT_FOUND
    _, body = graphql(DELETE, {"id": gid(copy.pk)}, token=planner_token_a)
    assert body["data"]["deleteKpiTree"]["errors"] == [
        {"code": "NOT_FOUND", "field": "id", "message": "KPI tree not found."}
    ]
    # and the default tree is refused, unchanged
    _, body = graphql(DELETE, {"id": gid(default.pk)}, token=planner_token_a)
    assert body["data"]["deleteKpiTree"] == {
        "deletedId": None,
        "removedNodeCount": 0,
        "errors": [
            {
                "code": "VALIDATION",
                "field": "id",
                "message": (
                    "The default tree cannot be deleted: make another tree the default first."
                ),
            }
        ],
    }
    assert trees(tenant_a) == {(default.name, True, 15)}


def test_tree_management_needs_kpis_write_and_stays_in_the_tenant(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_a: str, planner_token_b: str
) -> None:
    kpi_tree_ensure_default(tenant=tenant_a)
    other = kpi_tree_create(tenant=tenant_a, name="Other")
    before = trees(tenant_a)
    # a read-only token of A is refused
    _, body = graphql(UPDATE, {"input": {"id": gid(other.pk), "name": "x"}}, token=token_a)
    assert [e["code"] for e in body["data"]["updateKpiTree"]["errors"]] == ["PERMISSION_DENIED"]
    _, body = graphql(DELETE, {"id": gid(other.pk)}, token=token_a)
    assert [e["code"] for e in body["data"]["deleteKpiTree"]["errors"]] == ["PERMISSION_DENIED"]
    # B's planner cannot rename, promote or delete A's trees: they do not exist for B
    for variables, query, field in (
        ({"input": {"id": gid(other.pk), "name": "B's now"}}, UPDATE, "updateKpiTree"),
        ({"input": {"id": gid(other.pk), "makeDefault": True}}, UPDATE, "updateKpiTree"),
        ({"id": gid(other.pk)}, DELETE, "deleteKpiTree"),
    ):
        _, body = graphql(query, variables, token=planner_token_b)
        assert body["data"][field]["errors"] == [
            {"code": "NOT_FOUND", "field": "id", "message": "KPI tree not found."}
        ]
    # nothing changed on either side: A's trees as before, B's default still its own
    assert trees(tenant_a) == before
    _, body = graphql(TREES, token=planner_token_b)
    assert [t["isDefault"] for t in body["data"]["kpiTrees"]] == [True]
    assert gid(other.pk) not in {t["id"] for t in body["data"]["kpiTrees"]}


def test_services_refuse_another_tenants_tree(tenant_a: Any, tenant_b: Any) -> None:
    other = kpi_tree_create(tenant=tenant_a, name="A's")
    with pytest.raises(NotFound):
        kpi_tree_update(tenant=tenant_b, tree=other, name="mine")
    with pytest.raises(NotFound):
        kpi_tree_delete(tenant=tenant_b, tree=other)
    assert ("A's", False, 0) in trees(tenant_a)


def test_services_keep_one_default(tenant_a: Any) -> None:
    default = kpi_tree_ensure_default(tenant=tenant_a)
    other = kpi_tree_create(tenant=tenant_a, name="Other")
    kpi_tree_update(tenant=tenant_a, tree=other, make_default=True)
    with pytest.raises(ValidationFailed):
        kpi_tree_delete(tenant=tenant_a, tree=other)
    assert kpi_tree_delete(tenant=tenant_a, tree=default) == 15
    with tenant_context(tenant_a):
        assert list(KpiTree.objects.values_list("name", "is_default")) == [("Other", True)]
    with pytest.raises(PublicError) as raised:
        kpi_tree_update(tenant=tenant_a, tree=other, name="")
    assert raised.value.code == ErrorCode.VALIDATION


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_make_defaults_both_succeed_in_turn(tenant_a: Any) -> None:
    # given two trees besides the default, and a make-default of the first held open
    kpi_tree_ensure_default(tenant=tenant_a)
    first = kpi_tree_create(tenant=tenant_a, name="First")
    second = kpi_tree_create(tenant=tenant_a, name="Second")
    results: dict[str, str] = {}
    started = threading.Event()

    def promote(tree: KpiTree, hold: bool) -> None:
        try:
            with transaction.atomic():
                kpi_tree_update(tenant=tenant_a, tree=tree, make_default=True)
                if hold:
                    started.set()
                    time.sleep(0.5)  # the other make-default now waits for the trees' locks
            results[tree.name] = "default"
        except PublicError as error:
            results[tree.name] = error.code
        finally:
            connections.close_all()

    holder = threading.Thread(target=promote, args=(first, True))
    holder.start()
    assert started.wait(5)
    # when the second is made the default meanwhile
    other = threading.Thread(target=promote, args=(second, False))
    other.start()
    holder.join(10)
    other.join(10)
    # then both went through, one after the other: the later one is the one default
    assert results == {"First": "default", "Second": "default"}
    with tenant_context(tenant_a):
        assert list(KpiTree.objects.filter(is_default=True).values_list("name", flat=True)) == [
            "Second"
        ]
