"""Team attribution by the team history: every team-scoped fact counts for the team its rep
was in on the fact's local day; a move re-attributes only the days it covers, and the
refresh after it equals a rebuild. Values are hand-computed (see the scenario below)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from strawberry.relay import to_base64

from kpis.funnels import FunnelBreakdown, funnel_compute
from kpis.models import KpiMeasureValue, KpiMember, KpiSnapshot
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.selectors import kpi_definitions, kpi_values, measure_values
from kpis.snapshots import (
    kpi_snapshots_rebuild,
    kpi_snapshots_refresh_dirty,
    kpi_snapshots_warm,
)
from pipeline import services as pipeline_services
from pipeline.models import DealStage, DirtyDay, StageTransition
from tenants import members, services, team_history
from tenants.context import tenant_context
from tenants.models import SINCE_ALWAYS, Membership, MemberTeamSpan, Team, Tenant
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

D = dt.date
MEASURES = ("calls", "active_reps", "leads_created", "meetings")


def _at(day: int) -> dt.datetime:
    """Noon in Tokyo (the tenant's zone) on that day of March 2026."""
    return dt.datetime(2026, 3, day, 3, tzinfo=dt.UTC)


def _seed(tenant: Any) -> dict[str, Any]:
    """Teams East and West; rep r in East, rep s in West; in March 2026:

    r: calls on the 10th (2), 15th, 16th and 20th (3); leads L1 (5th), L2 (9th), L3 (18th);
       meetings of L1 on the 10th and of L2 on the 19th; a deal on L1 on the 11th (open).
    s: a call on the 12th; lead L4 (12th) with its meeting on the 13th.
    """
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    r = members.membership_add(tenant=tenant, user=UserFactory(), role=Role.REP, team=east)
    s = members.membership_add(tenant=tenant, user=UserFactory(), role=Role.REP, team=west)
    with tenant_context(tenant):
        leads = {}
        for name, owner, day in (("L1", r, 5), ("L2", r, 9), ("L3", r, 18), ("L4", s, 12)):
            leads[name] = pipeline_services.lead_create(
                tenant=tenant, company=name, owner=owner, created_at=_at(day)
            )
        for name, day in (("L1", 10), ("L2", 19), ("L4", 13)):
            for stage in ("mql", "sql", "meeting"):
                pipeline_services.lead_transition(lead=leads[name], to_stage=stage, at=_at(day))
        for rep, lead, day, count in ((r, "L1", 10, 2), (r, "L1", 15, 1), (r, "L2", 16, 1),
                                      (r, "L3", 20, 3), (s, "L4", 12, 1)):  # fmt: skip
            for _ in range(count):
                pipeline_services.activity_create(
                    tenant=tenant, lead=leads[lead], rep=rep, type="call", occurred_at=_at(day)
                )
        stage = DealStage.objects.filter(win_probability__gt=0, is_won=False).order_by("order")[0]
        pipeline_services.deal_create(
            tenant=tenant, lead=leads["L1"], amount=Decimal(1000), stage=stage, created_at=_at(11)
        )
        kpi_snapshots_refresh_dirty(tenant=tenant)
    return {"east": east, "west": west, "r": r, "s": s, "weighted": 1000 * stage.win_probability}


def _measures(tenant: Any, label: str, team: Team, keys: tuple[str, ...] = MEASURES) -> tuple:
    period = parse_period(label, tenant.fiscal_year_start_month)
    scope = KpiScope.team(team.pk)
    with tenant_context(tenant):
        got = measure_values(tenant=tenant, periods=[period], scopes=[scope], needed=keys)
    return tuple(got.get((period, scope), {}).get(key) or 0 for key in keys)


def _meeting_rate(tenant: Any, label: str, team: Team) -> Decimal | None:
    period = parse_period(label, tenant.fiscal_year_start_month)
    scope = KpiScope.team(team.pk)
    with tenant_context(tenant):
        kpi = kpi_definitions(tenant=tenant, keys=["meeting_rate"])["meeting_rate"]
        value = kpi_values(tenant=tenant, kpis=[kpi], periods=[period], scopes=[scope])
    result = value[("meeting_rate", period, scope)].value
    return None if result is None else result.quantize(Decimal("0.0001"))


def _table(tenant: Any) -> dict[tuple, tuple]:
    columns = [
        f.name for f in KpiSnapshot._meta.concrete_fields if f.name not in {"id", "computed_at"}
    ]
    with tenant_context(tenant):
        rows = KpiSnapshot.objects.values_list(*columns)
        return {(r[1], r[2], r[4], r[5]): r for r in rows}


def _dirty_days(tenant: Any) -> list[dt.date]:
    with tenant_context(tenant):
        return sorted(DirtyDay.objects.values_list("day", flat=True))


def _stored(member: Membership) -> Membership:
    with tenant_context(member.tenant_id):
        return Membership.objects.get(pk=member.pk)


def _spans(member: Membership) -> list[tuple]:
    return [(s.team_id, s.valid_from, s.valid_until) for s in team_history.team_spans(member)]


def test_a_move_in_the_middle_of_a_month_splits_the_teams_numbers(tenant_a: Any) -> None:
    # given the scenario of _seed, counted with r in East all month
    seeded = _seed(tenant_a)
    east, west, r = seeded["east"], seeded["west"], seeded["r"]
    # (calls, active reps, leads created, meetings)
    assert _measures(tenant_a, "2026-03", east) == (7, 1, 3, 2)
    assert _measures(tenant_a, "2026-03", west) == (1, 1, 1, 1)
    assert _meeting_rate(tenant_a, "2026-03", east) == Decimal("66.6667")
    assert _meeting_rate(tenant_a, "2026-03", west) == Decimal("100.0000")

    # when r moves to West from Monday the 16th (backdated: recorded in December)
    members.member_update(membership=r, team=west, team_effective_from="2026-03-16")

    # then only the days of r's rows from the 16th on are marked (16th: a call and the
    # open deal changing team; 18th: L3; 19th: L2's meeting; 20th: calls), no rebuild
    assert _dirty_days(tenant_a) == [D(2026, 3, 16), D(2026, 3, 18), D(2026, 3, 19), D(2026, 3, 20)]
    assert Tenant.objects.get(pk=tenant_a.pk).kpi_rebuild_requested_at is None
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, D(2026, 3, 16)), (west.pk, D(2026, 3, 16), None)]
    assert _stored(r).team_id == west.pk
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # and the transitions from the 16th record the team of the history
        recorded = set(
            StageTransition.objects.filter(owner=r).values_list("at__day", "team_id").distinct()
        )
    assert recorded == {(10, east.pk), (19, west.pk)}

    # the month: East keeps r's first half (L1, L2 created; L1's meeting), West gets the rest
    assert _measures(tenant_a, "2026-03", east) == (3, 1, 2, 1)
    assert _measures(tenant_a, "2026-03", west) == (5, 2, 2, 2)
    assert _meeting_rate(tenant_a, "2026-03", east) == Decimal("50.0000")
    assert _meeting_rate(tenant_a, "2026-03", west) == Decimal("100.0000")
    # the weeks before and after the move
    assert _measures(tenant_a, "2026-W11", east) == (3, 1, 1, 1)
    assert _measures(tenant_a, "2026-W11", west) == (1, 1, 1, 1)
    assert _measures(tenant_a, "2026-W12", east) == (0, 0, 0, 0)
    assert _meeting_rate(tenant_a, "2026-W12", east) is None
    assert _measures(tenant_a, "2026-W12", west) == (4, 1, 1, 1)
    # the days either side of it
    assert _measures(tenant_a, "2026-03-15", east) == (1, 1, 0, 0)
    assert _measures(tenant_a, "2026-03-15", west) == (0, 0, 0, 0)
    assert _measures(tenant_a, "2026-03-16", east) == (0, 0, 0, 0)
    assert _measures(tenant_a, "2026-03-16", west) == (1, 1, 0, 0)
    # the open deal counts for East until the 15th and for West from the 16th
    weighted = seeded["weighted"]
    assert _measures(tenant_a, "2026-W11", east, ("weighted_pipeline",)) == (weighted,)
    assert _measures(tenant_a, "2026-W11", west, ("weighted_pipeline",)) == (0,)
    assert _measures(tenant_a, "2026-03", east, ("weighted_pipeline",)) == (0,)
    assert _measures(tenant_a, "2026-03", west, ("weighted_pipeline",)) == (weighted,)
    # and the tenant's numbers do not move
    assert _measures_tenant(tenant_a, "2026-03") == (8, 2, 4, 3)
    # and the period funnel's team breakdown agrees: leads and meetings of each team's days
    assert _funnel_leads_and_meetings(tenant_a) == {east.pk: (2, 1), west.pk: (2, 2)}

    # and the refresh equals a rebuild, row for row
    incremental = _table(tenant_a)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    assert _table(tenant_a) == incremental


def _funnel_leads_and_meetings(tenant: Any) -> dict[int, tuple[int, int]]:
    period = parse_period("2026-03", tenant.fiscal_year_start_month)
    result = funnel_compute(tenant=tenant, period=period, breakdown=FunnelBreakdown.TEAM)
    out = {}
    for group in result.groups:
        counts = {step.stage: step.count for step in group.steps}
        out[int(group.key)] = (counts["lead"], counts["meeting"])
    return out


def _measures_tenant(tenant: Any, label: str) -> tuple:
    period = parse_period(label, tenant.fiscal_year_start_month)
    scope = KpiScope.tenant()
    with tenant_context(tenant):
        got = measure_values(tenant=tenant, periods=[period], scopes=[scope], needed=MEASURES)
    return tuple(got[(period, scope)].get(key) or 0 for key in MEASURES)


def test_a_backdated_move_before_a_later_one_covers_only_the_days_up_to_it(
    tenant_a: Any,
) -> None:
    # given r moved to West from the 16th and counted
    seeded = _seed(tenant_a)
    east, west, r = seeded["east"], seeded["west"], seeded["r"]
    members.member_update(membership=r, team=west, team_effective_from=D(2026, 3, 16))
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    north = TeamFactory(tenant=tenant_a, name="North")

    # when r is put in North from the 9th, before that move
    members.member_update(membership=r, team=north, team_effective_from=D(2026, 3, 9))

    # then the history keeps the later move, the current team stays West, and only the
    # days of r's rows in [9th, 16th) and the 16th (the deal's team change) are marked
    assert _spans(r) == [
        (east.pk, SINCE_ALWAYS, D(2026, 3, 9)),
        (north.pk, D(2026, 3, 9), D(2026, 3, 16)),
        (west.pk, D(2026, 3, 16), None),
    ]
    assert _stored(r).team_id == west.pk
    assert _dirty_days(tenant_a) == [
        D(2026, 3, 9), D(2026, 3, 10), D(2026, 3, 11), D(2026, 3, 15), D(2026, 3, 16)
    ]  # fmt: skip
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    # North: L2 created on the 9th, L1's meeting and 2 calls on the 10th, a call on the 15th
    assert _measures(tenant_a, "2026-03", north) == (3, 1, 1, 1)
    assert _measures(tenant_a, "2026-03", east) == (0, 0, 1, 0)
    assert _meeting_rate(tenant_a, "2026-03", east) == Decimal("0.0000")
    assert _measures(tenant_a, "2026-03", west) == (5, 2, 2, 2)
    incremental = _table(tenant_a)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    assert _table(tenant_a) == incremental

    # and moving back to the team of the neighbouring spans merges them into one
    members.member_update(membership=r, team=east, team_effective_from=D(2026, 3, 9))
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, D(2026, 3, 16)), (west.pk, D(2026, 3, 16), None)]


def test_moving_to_the_team_of_that_day_changes_nothing(tenant_a: Any) -> None:
    seeded = _seed(tenant_a)
    members.member_update(
        membership=seeded["r"], team=seeded["east"], team_effective_from=D(2026, 3, 16)
    )
    assert _dirty_days(tenant_a) == []
    assert _spans(seeded["r"]) == [(seeded["east"].pk, SINCE_ALWAYS, None)]


def test_a_save_outside_the_services_is_recorded_as_a_move_today(tenant_a: Any) -> None:
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    r = members.membership_add(tenant=tenant_a, user=UserFactory(), role=Role.REP, team=east)
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, None)]
    today = team_history.tenant_today(tenant_a)
    with tenant_context(tenant_a):
        r.team = west
        r.save()
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, today), (west.pk, today, None)]
    # and an import naming another team for a member records a move from its given day
    members.membership_add(
        tenant=tenant_a, user=r.user, role=Role.REP, team=east, team_effective_from=today
    )
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, None)]


UPDATE_MEMBER = """mutation($input: UpdateMemberInput!) {
  updateMember(input: $input) {
    member { id team { name } }
    errors { code field message }
  }
}"""


@pytest.fixture
def config_a(tenant_a: Any) -> str:
    return services.api_token_create(tenant=tenant_a, name="admin", scopes=["config:write"])[1]


def test_update_member_records_a_backdated_move(graphql: Any, tenant_a: Any, config_a: str):
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    r = members.membership_add(tenant=tenant_a, user=UserFactory(), role=Role.REP, team=east)
    variables = {
        "input": {
            "id": to_base64("Membership", r.pk),
            "teamId": to_base64("Team", west.pk),
            "teamEffectiveFrom": "2026-03-16",
        }
    }
    _, body = graphql(UPDATE_MEMBER, variables, token=config_a)
    assert body["data"]["updateMember"] == {
        "member": {"id": to_base64("Membership", r.pk), "team": {"name": "W"}},
        "errors": [],
    }
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, D(2026, 3, 16)), (west.pk, D(2026, 3, 16), None)]


def test_bad_moves_are_refused_and_change_nothing(
    graphql: Any, tenant_a: Any, tenant_b: Any, config_a: str
) -> None:
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    theirs = TeamFactory(tenant=tenant_b, name="Theirs")
    r = members.membership_add(tenant=tenant_a, user=UserFactory(), role=Role.REP, team=east)
    tomorrow = team_history.tenant_today(tenant_a) + dt.timedelta(days=1)
    member_id, west_id = to_base64("Membership", r.pk), to_base64("Team", west.pk)
    cases = [
        ({"teamId": west_id, "teamEffectiveFrom": "2026-02-30"}, "VALIDATION", "teamEffectiveFrom"),
        ({"teamId": west_id, "teamEffectiveFrom": "16/03/2026"}, "VALIDATION", "teamEffectiveFrom"),
        ({"teamId": west_id, "teamEffectiveFrom": tomorrow.isoformat()}, "VALIDATION",
         "teamEffectiveFrom"),
        ({"teamId": west_id, "teamEffectiveFrom": "1900-01-01"}, "OUT_OF_RANGE",
         "teamEffectiveFrom"),
        ({"role": "MANAGER", "teamEffectiveFrom": "2026-03-16"}, "VALIDATION", "teamEffectiveFrom"),
        # another tenant's team is not found, as a missing one
        ({"teamId": to_base64("Team", theirs.pk)}, "NOT_FOUND", "teamId"),
    ]  # fmt: skip
    for fields, code, field in cases:
        _, body = graphql(UPDATE_MEMBER, {"input": {"id": member_id, **fields}}, token=config_a)
        payload = body["data"]["updateMember"]
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], fields
        assert payload["member"] is None
    # nothing changed: the team, the role, the history, no day marked
    stored = _stored(r)
    assert (stored.team_id, stored.role) == (east.pk, Role.REP)
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, None)]
    assert _dirty_days(tenant_a) == []
    with tenant_context(tenant_b):
        assert MemberTeamSpan.objects.count() == 0


def test_a_backdated_transition_records_its_owners_team_of_that_day(tenant_a: Any) -> None:
    # given r in East until the 16th and in West since
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    r = members.membership_add(tenant=tenant_a, user=UserFactory(), role=Role.REP, team=east)
    members.member_update(membership=r, team=west, team_effective_from=D(2026, 3, 16))
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(
            tenant=tenant_a, company="L", owner=r, created_at=_at(1)
        )
        # when transitions are recorded on the 15th and the 16th (Tokyo)
        before = pipeline_services.lead_transition(lead=lead, to_stage="mql", at=_at(15))
        after = pipeline_services.lead_transition(lead=lead, to_stage="sql", at=_at(16))
    # then each keeps the team r was in that day
    assert (before.team_id, after.team_id) == (east.pk, west.pk)


def _team_rows(tenant: Any, team: Team) -> list[tuple]:
    """Every stored row of the team's scope: snapshots, registered measures, active reps."""
    scope = {"scope_type": "team", "scope_key": str(team.pk)}
    with tenant_context(tenant):
        return [
            *KpiSnapshot.objects.filter(**scope).values_list("grain", "period_start"),
            *KpiMeasureValue.objects.filter(**scope).values_list("grain", "period_start"),
            *KpiMember.objects.filter(**scope).values_list("grain", "period_start"),
        ]


def _measure_values(tenant: Any) -> set[tuple]:
    with tenant_context(tenant):
        return set(
            KpiMeasureValue.objects.values_list(
                "grain", "period_start", "scope_type", "scope_key", "measure", "value"
            )
        )


def test_deleting_a_team_marks_its_days_and_the_refresh_equals_a_rebuild(tenant_a: Any) -> None:
    # given the scenario of _seed with facts in other months too: s (West) opens a deal in
    # January (the weighted pipeline, a stock, counts for West in every later period) and
    # calls in April; r calls in February; then r moves to West from the 16th of March
    seeded = _seed(tenant_a)
    east, west, r, s = seeded["east"], seeded["west"], seeded["r"], seeded["s"]
    with tenant_context(tenant_a):
        stage = DealStage.objects.filter(win_probability__gt=0, is_won=False).order_by("order")[0]
        lead = pipeline_services.lead_create(
            tenant=tenant_a,
            company="L5",
            owner=s,
            created_at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC),
        )
        pipeline_services.deal_create(
            tenant=tenant_a, lead=lead, amount=Decimal(500), stage=stage,
            created_at=dt.datetime(2026, 1, 21, tzinfo=dt.UTC),
        )  # fmt: skip
        for rep, moment in ((s, dt.datetime(2026, 4, 2, tzinfo=dt.UTC)),
                            (r, dt.datetime(2026, 2, 3, tzinfo=dt.UTC))):  # fmt: skip
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=rep, type="call", occurred_at=moment
            )
    members.member_update(membership=r, team=west, team_effective_from=D(2026, 3, 16))
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # (on PostgreSQL, active reps kept per period, as after a rebuild)
        kpi_snapshots_warm(tenant=tenant_a)
    assert _measures(tenant_a, "2026-05", west, ("weighted_pipeline",)) > (0,)
    assert _team_rows(tenant_a, west) != []
    east_rows = _team_rows(tenant_a, east)

    # when West is deleted
    members.team_delete(team=west)

    # then no rebuild is asked for: the days of West's spans are marked (all of s's rows, r's
    # from the 16th of March on), and the creation days of the leads its members own (the
    # cohort funnel groups them by their owner's current team); not r's days in East
    assert Tenant.objects.get(pk=tenant_a.pk).kpi_rebuild_requested_at is None
    assert _dirty_days(tenant_a) == [
        D(2026, 1, 20), D(2026, 1, 21), D(2026, 3, 5), D(2026, 3, 9), D(2026, 3, 12),
        D(2026, 3, 13), D(2026, 3, 16), D(2026, 3, 18), D(2026, 3, 19), D(2026, 3, 20),
        D(2026, 4, 2),
    ]  # fmt: skip
    # and the refresh of those days leaves no row of West, and equals a rebuild
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    assert _dirty_days(tenant_a) == []
    assert _team_rows(tenant_a, west) == []
    assert _team_rows(tenant_a, east) == east_rows
    assert Tenant.objects.get(pk=tenant_a.pk).kpi_rebuild_requested_at is None
    assert _spans(r) == [(east.pk, SINCE_ALWAYS, D(2026, 3, 16)), (None, D(2026, 3, 16), None)]
    incremental, values = _table(tenant_a), _measure_values(tenant_a)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    assert _table(tenant_a) == incremental
    assert _measure_values(tenant_a) == values
    # and r's numbers in East before the move are untouched
    assert _measures(tenant_a, "2026-03", east) == (3, 1, 2, 1)


def test_deleting_a_tenant_takes_its_teams_without_marking_their_days(tenant_a: Any) -> None:
    # given a tenant with teams, a move and counted facts (no deal: deal stages are protected)
    east, west = TeamFactory(tenant=tenant_a, name="East"), TeamFactory(tenant=tenant_a, name="W")
    r = members.membership_add(tenant=tenant_a, user=UserFactory(), role=Role.REP, team=east)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(
            tenant=tenant_a, company="L", owner=r, created_at=_at(5)
        )
        pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, rep=r, type="call", occurred_at=_at(20)
        )
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    members.member_update(membership=r, team=west, team_effective_from=D(2026, 3, 16))
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        # when the tenant is deleted (its teams with it)
        Tenant.objects.get(pk=tenant_a.pk).delete()
    # then nothing of it is left, no dirty mark either (its teams' deletion marks none)
    assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
    with tenant_context(tenant_a):
        assert not DirtyDay.objects.exists()
        assert not Team.objects.exists()
