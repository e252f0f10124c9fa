"""setKpiTargets: many targets in one request, all or none, with a bounded number of queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from strawberry.relay import to_base64

from kpis.models import KpiTarget
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory

SET = """mutation($targets: [SetKpiTargetInput!]!) {
  setKpiTargets(targets: $targets) {
    targets { kpi { key } period { label } scope { type id } value }
    errors { code field index message }
  }
}"""


def reps(tenant: Any, count: int) -> list[str]:
    ids = []
    for n in range(count):
        user = UserFactory(username=f"{tenant.slug}-rep{n}")
        member = members.membership_add(tenant=tenant, user=user, role=Role.REP)
        ids.append(to_base64("Membership", member.pk))
    return ids


def stored(tenant: Any) -> dict[tuple[str, str, str], Decimal]:
    with tenant_context(tenant):
        return {
            (t.kpi_key, t.scope_type, t.scope_key): t.value
            for t in KpiTarget.objects.order_by("pk")
        }


def send(graphql: Any, token: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    status, body = graphql(SET, {"targets": targets}, token=token)
    assert status == 200 and "errors" not in body, body
    return body["data"]["setKpiTargets"]


def calls_for(rep: str, value: str | None, period: str = "2026-05") -> dict[str, Any]:
    return {"kpi": "calls", "period": period, "scope": {"type": "REP", "id": rep}, "value": value}


@pytest.mark.parametrize("count", [2, 12])
def test_every_reps_target_in_one_request_with_bounded_queries(
    graphql, tenant_a, planner_token_a, django_assert_max_num_queries, count
):
    rep_ids = reps(tenant_a, count)
    targets = [calls_for(rep, str(600 + n)) for n, rep in enumerate(rep_ids)]
    targets.append({"kpi": "meeting_rate", "period": "2026-05", "value": "20.5"})
    with django_assert_max_num_queries({"sqlite": 17, "postgresql": 27}[connection.vendor]):
        payload = send(graphql, planner_token_a, targets)
    assert payload["errors"] == []
    assert [t["value"] for t in payload["targets"]] == [
        *(f"{600 + n}.0000" for n in range(count)),
        "20.5000",
    ]
    assert payload["targets"][0]["scope"] == {"type": "REP", "id": rep_ids[0]}
    assert len(stored(tenant_a)) == count + 1


def test_a_batch_updates_and_clears_existing_targets(graphql, tenant_a, planner_token_a):
    first, second = reps(tenant_a, 2)
    send(graphql, planner_token_a, [calls_for(first, "500"), calls_for(second, "500")])
    payload = send(graphql, planner_token_a, [calls_for(first, "650"), calls_for(second, None)])
    assert payload["errors"] == []
    assert payload["targets"][1] is None
    assert list(stored(tenant_a).values()) == [Decimal("650.0000")]


def test_one_bad_entry_sets_nothing_and_every_bad_entry_is_named(
    graphql, tenant_a, tenant_b, planner_token_a
):
    (rep,) = reps(tenant_a, 1)
    (other_tenants_rep,) = reps(tenant_b, 1)
    send(graphql, planner_token_a, [calls_for(rep, "500")])
    payload = send(
        graphql,
        planner_token_a,
        [
            calls_for(rep, "700"),  # fine on its own
            {"kpi": "meeting_rate", "period": "2026-05", "value": "120"},  # over 100 %
            {"kpi": "no_such_kpi", "period": "2026-05", "value": "1"},
            calls_for(other_tenants_rep, "1"),
            calls_for(rep, "1", period="2026-13"),
            calls_for(rep, "800"),  # the same target as entry 0
            {"kpi": "calls", "period": "2026-05", "scope": {"type": "TEAM", "id": rep},
             "value": "1"},  # a member's id as a team
        ],
    )  # fmt: skip
    assert payload["targets"] == []
    assert [(e["index"], e["code"], e["field"]) for e in payload["errors"]] == [
        (1, "VALIDATION", "value"),
        (2, "NOT_FOUND", "kpi"),
        (3, "NOT_FOUND", "scope"),
        (4, "VALIDATION", "period"),
        (5, "VALIDATION", "kpi"),
        (6, "NOT_FOUND", "scope"),
    ]
    assert list(stored(tenant_a).values()) == [Decimal("500.0000")]
    assert stored(tenant_b) == {}


@pytest.mark.parametrize("size", [0, 501])
def test_an_empty_or_oversized_batch_is_refused(graphql, tenant_a, planner_token_a, size):
    targets = [{"kpi": "calls", "period": f"2026-{m:02d}", "value": "1"} for m in range(1, 13)]
    payload = send(graphql, planner_token_a, (targets * 42)[:size])
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION", "targets")]
    assert stored(tenant_a) == {}


def test_targets_need_kpis_write(graphql, tenant_a, token_a):
    payload = send(graphql, token_a, [{"kpi": "calls", "period": "2026-05", "value": "1"}])
    assert [e["code"] for e in payload["errors"]] == ["PERMISSION_DENIED"]
    assert stored(tenant_a) == {}
