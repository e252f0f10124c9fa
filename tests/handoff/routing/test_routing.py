"""Routing: weighted round-robin fairness, capacity caps, members on leave or inactive, the
stored rotation position, chosen owners, validation and tenant isolation."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from handoff.assigning import route_lead
from handoff.models import Assignment, AuditEntry, RotationState
from handoff.routing import pick_member, rotation, routing_validate
from tenants import absences, members
from tenants.context import tenant_context
from tenants.errors import NotFound, ValidationFailed
from tenants.scopes import Role
from tests.handoff.routing.conftest import MONDAY, add_member, make_lead, make_version

pytestmark = pytest.mark.django_db


def _route(tenant: Any, version: Any, n: int, *, at: dt.datetime = MONDAY) -> list[Any]:
    return [
        route_lead(lead=make_lead(tenant, company=f"C{i}"), stage="sql", version=version, at=at)
        for i in range(n)
    ]


def test_rotation_spreads_weights_out() -> None:
    assert rotation([(1, 2), (2, 1)]) == [1, 2, 1]
    assert rotation([(1, 1), (2, 1), (3, 1)]) == [1, 2, 3]
    assert rotation([(1, 0), (2, 1)]) == [2]


def test_pick_skips_and_reports_why() -> None:
    pick = pick_member(order=[1, 2, 3], position=0, inactive={1}, on_leave={2}, load={3: 0}, cap=1)
    assert (pick.member_id, pick.slot, pick.next_position) == (3, 2, 0)
    assert pick.skipped == [
        {"memberId": 1, "reason": "inactive"},
        {"memberId": 2, "reason": "onLeave"},
    ]


def test_weighted_round_robin_is_fair(tenant_a, sellers, field_manager, field_team) -> None:
    # given weights 2:1:1 (the manager of the team is not in the rotation)
    fs1, fs2, fs3 = sellers
    version = make_version(
        tenant_a,
        routing={"sql": {"teamId": field_team.pk, "weights": {str(fs1.pk): 2}}},
    )
    # when 8 leads are routed
    assignments = _route(tenant_a, version, 8)
    # then the shares follow the weights exactly, in a spread-out order
    counts = Counter(a.member_id for a in assignments)
    assert counts == {fs1.pk: 4, fs2.pk: 2, fs3.pk: 2}
    assert [a.member_id for a in assignments[:4]] == [fs1.pk, fs2.pk, fs3.pk, fs1.pk]
    # and each lead's owner is the assignee, with the reason recorded
    with tenant_context(tenant_a):
        first = assignments[0]
        first.lead.refresh_from_db()
        assert first.lead.owner_id == fs1.pk
        assert first.reason == {
            "ruleVersionId": version.pk,
            "strategy": "roundRobin",
            "teamId": field_team.pk,
            "rotationPosition": 0,
            "skipped": [],
        }
        assert AuditEntry.objects.filter(action="sql.assigned").count() == 8


def test_rotation_position_survives_a_restart(tenant_a, sellers, field_team) -> None:
    _, _, fs3 = sellers
    version = make_version(tenant_a, routing={"sql": {"teamId": field_team.pk}})
    _route(tenant_a, version, 2)
    with tenant_context(tenant_a):
        assert RotationState.objects.get(stage="sql", team=field_team).position == 2
    # when routing continues later (nothing but the stored position carries over)
    (third,) = _route(tenant_a, version, 1)
    assert third.member_id == fs3.pk


def test_capacity_cap_per_week(tenant_a, sellers, field_team) -> None:
    fs1, fs2, fs3 = sellers
    version = make_version(
        tenant_a,
        routing={"sql": {"teamId": field_team.pk, "capacity": {"max": 1, "period": "week"}}},
    )
    assignments = _route(tenant_a, version, 4)
    assert [a.member_id for a in assignments[:3]] == [fs1.pk, fs2.pk, fs3.pk]
    # then the fourth lead finds everyone at capacity: recorded with no member
    overflow = assignments[3]
    assert overflow.member_id is None
    assert overflow.reason["skipped"] == [
        {"memberId": fs1.pk, "reason": "capacity"},
        {"memberId": fs2.pk, "reason": "capacity"},
        {"memberId": fs3.pk, "reason": "capacity"},
    ]
    # and next week the cap is free again
    (next_week,) = _route(tenant_a, version, 1, at=MONDAY + dt.timedelta(days=7))
    assert next_week.member_id == fs1.pk


def test_members_on_leave_and_inactive_are_skipped(tenant_a, sellers, field_team) -> None:
    fs1, fs2, fs3 = sellers
    absences.absence_add(
        tenant=tenant_a, member=fs1, start_date=MONDAY.date(), end_date=MONDAY.date()
    )
    members.member_update(membership=fs2, is_active=False)
    version = make_version(tenant_a, routing={"sql": {"teamId": field_team.pk}})
    assignments = _route(tenant_a, version, 2)
    assert [a.member_id for a in assignments] == [fs3.pk, fs3.pk]
    assert assignments[0].reason["skipped"] == [
        {"memberId": fs1.pk, "reason": "onLeave"},
        {"memberId": fs2.pk, "reason": "inactive"},
    ]
    # the day after the leave, fs1 is back in the rotation
    (tuesday,) = _route(tenant_a, version, 1, at=MONDAY + dt.timedelta(days=1))
    assert tuesday.member_id == fs1.pk


def test_a_chosen_owner_or_a_fixed_owner(tenant_a, sellers, field_team) -> None:
    fs1, fs2, _ = sellers
    version = make_version(tenant_a, routing={"mql": {"strategy": "owner", "ownerId": fs2.pk}})
    lead = make_lead(tenant_a)
    assert route_lead(lead=lead, stage="mql", version=version, at=MONDAY).member_id == fs2.pk
    chosen = route_lead(lead=lead, stage="sql", version=version, owner=fs1, at=MONDAY)
    assert (chosen.member_id, chosen.reason["strategy"]) == (fs1.pk, "chosen")
    # no routing for the stage and no owner: nothing happens
    assert route_lead(lead=lead, stage="sql", version=version, at=MONDAY) is None


def test_another_tenants_owner_is_unknown(tenant_a, tenant_b, sellers) -> None:
    foreign = add_member(tenant_b, "bob", Role.FIELD_SALES)
    lead = make_lead(tenant_a)
    with pytest.raises(NotFound):
        route_lead(lead=lead, stage="sql", owner=foreign, at=MONDAY)
    with tenant_context(tenant_a):
        assert not Assignment.objects.exists()
        lead.refresh_from_db()
        assert lead.owner_id is None


def test_another_tenants_team_routes_to_nobody(tenant_a, tenant_b, sellers) -> None:
    from tests.factories import TeamFactory

    foreign_team = TeamFactory(tenant=tenant_b, name="Theirs")
    add_member(tenant_b, "bob", Role.FIELD_SALES, foreign_team)
    version = make_version(tenant_a, routing={"sql": {"teamId": foreign_team.pk}})
    (assignment,) = _route(tenant_a, version, 1)
    assert assignment.member_id is None
    assert assignment.reason["skipped"] == [{"teamId": foreign_team.pk, "reason": "unknownTeam"}]


@pytest.mark.parametrize(
    ("routing", "field"),
    [
        ([], "routing"),
        ({"lead": {}}, "routing"),
        ({"sql": {"strategy": "random", "teamId": 1}}, "routing.sql.strategy"),
        ({"sql": {"strategy": "roundRobin"}}, "routing.sql.teamId"),
        ({"sql": {"teamId": "x"}}, "routing.sql.teamId"),
        ({"sql": {"teamId": 1, "weights": {"2": -1}}}, "routing.sql.weights.2"),
        ({"sql": {"teamId": 1, "capacity": {"max": 0}}}, "routing.sql.capacity.max"),
        (
            {"sql": {"teamId": 1, "capacity": {"max": 3, "period": "year"}}},
            "routing.sql.capacity.period",
        ),
        ({"mql": {"strategy": "owner"}}, "routing.mql.ownerId"),
    ],
)
def test_routing_validation_names_the_bad_part(routing: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        routing_validate(routing)
    assert error.value.field == field


def test_routing_validation_normalises_global_ids() -> None:
    from strawberry import relay

    team = relay.to_base64("Team", 7)
    member = relay.to_base64("Membership", 9)
    assert routing_validate({"sql": {"teamId": team, "weights": {member: 3}}}) == {
        "sql": {"strategy": "roundRobin", "teamId": 7, "weights": {"9": 3}}
    }
