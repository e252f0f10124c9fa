"""A member's team history over the API: `Membership.teamHistory`, oldest first, read for a
whole member list in a constant number of queries, and only within the request's tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from tenants import members, services
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

HISTORY = """{ members { edges { node { email
  teamHistory { team { name } validFrom validUntil }
} } } }"""


def _token(tenant: Any) -> str:
    return services.api_token_create(tenant=tenant, name="reader", scopes=["config:write"])[1]


def _histories(graphql: Any, token: str) -> dict[str, list[tuple]]:
    _, body = graphql(HISTORY, token=token)
    assert "errors" not in body, body
    return {
        edge["node"]["email"]: [
            ((s["team"] or {}).get("name"), s["validFrom"], s["validUntil"])
            for s in edge["node"]["teamHistory"]
        ]
        for edge in body["data"]["members"]["edges"]
    }


def test_the_history_reads_oldest_first_since_always_as_null(graphql: Any, tenant_a: Any):
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    north = TeamFactory(tenant=tenant_a, name="North")
    user = UserFactory(email="r@example.com")
    r = members.membership_add(tenant=tenant_a, user=user, role=Role.REP, team=east)
    UserFactory(email="s@example.com")
    # a move, then a backdated one before it (its span is stored after, listed before)
    members.member_update(membership=r, team=west, team_effective_from=dt.date(2026, 3, 16))
    members.member_update(membership=r, team=north, team_effective_from=dt.date(2026, 3, 9))
    histories = _histories(graphql, _token(tenant_a))
    assert histories["r@example.com"] == [
        ("East", None, "2026-03-09"),
        ("North", "2026-03-09", "2026-03-16"),
        ("W", "2026-03-16", None),
    ]
    # and a deleted team leaves its days in no team
    members.team_delete(team=north)
    assert _histories(graphql, _token(tenant_a))["r@example.com"][1] == (
        None,
        "2026-03-09",
        "2026-03-16",
    )


@pytest.mark.parametrize("count", [1, 12])
def test_a_member_list_with_histories_reads_in_constant_queries(
    graphql: Any, tenant_a: Any, django_assert_max_num_queries: Any, count: int
) -> None:
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    for n in range(count):
        user = UserFactory(username=f"rep{n}", email=f"rep{n}@example.com")
        rep = members.membership_add(tenant=tenant_a, user=user, role=Role.REP, team=east)
        members.member_update(membership=rep, team=west, team_effective_from=dt.date(2026, 3, 1))
    token = _token(tenant_a)
    # the same bound for 1 and 12 members: the members, their spans, the spans' teams (and
    # the request's token reads; PostgreSQL adds its row-level security settings)
    with django_assert_max_num_queries({"sqlite": 11, "postgresql": 17}[connection.vendor]):
        histories = _histories(graphql, token)
    assert len(histories) == count
    assert set(map(tuple, histories.values())) == {
        (("East", None, "2026-03-01"), ("W", "2026-03-01", None))
    }


def test_another_tenant_cannot_read_the_history(graphql: Any, tenant_a: Any, tenant_b: Any):
    east = TeamFactory(tenant=tenant_a, name="East")
    ours = TeamFactory(tenant=tenant_b, name="Ours")
    r = members.membership_add(
        tenant=tenant_a, user=UserFactory(email="r@example.com"), role=Role.REP, team=east
    )
    members.member_update(membership=r, team=None, team_effective_from=dt.date(2026, 3, 1))
    # the same user is a member of B too, in B's team
    members.membership_add(tenant=tenant_b, user=r.user, role=Role.REP, team=ours)
    histories = _histories(graphql, _token(tenant_b))
    # B sees its own membership's history only: none of A's spans or teams
    assert histories == {"r@example.com": [("Ours", None, None)]}
