"""Pipeline services: the lead lifecycle and its history, leads, activities and deals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipeline import services
from pipeline.lifecycle import Stage
from pipeline.models import Activity, Deal, DealStage, DealStageChange, DirtyDay, Lead
from pipeline.models import StageTransition as Transition
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tests.factories import MembershipFactory, TeamFactory
from tests.pipeline.factories import AT, DealFactory, LeadFactory

HOUR = dt.timedelta(hours=1)


def _history(tenant, lead):
    with tenant_context(tenant):
        return list(
            Transition.objects.filter(lead=lead).values_list(
                "from_stage", "to_stage", "at", "owner_id", "team_id", "actor_label", "reason"
            )
        )


def _stage(tenant, lead):
    with tenant_context(tenant):
        return Lead.objects.get(pk=lead.pk).stage


def _dirty_days(tenant):
    with tenant_context(tenant):
        return list(DirtyDay.objects.order_by("day").values_list("day", flat=True))


def _deal_stages(tenant):
    with tenant_context(tenant):
        return {stage.name: stage for stage in DealStage.objects.all()}


# --- the lead lifecycle ---------------------------------------------------------------


def test_transition_moves_the_lead_and_records_who_owned_it_then(tenant_a, rep_a, team_a):
    # given a lead owned by a rep of team IS East
    lead = LeadFactory(tenant=tenant_a, owner=rep_a)
    # when it becomes an MQL, then the owner changes team and it becomes an SQL
    services.lead_transition(
        lead=lead, to_stage=Stage.MQL, at=AT, actor_label="alice", reason="score 80"
    )
    other_team = TeamFactory(tenant=tenant_a, name="IS West")
    with tenant_context(tenant_a):
        rep_a.team = other_team
        rep_a.save(update_fields=["team"])
    new_owner = MembershipFactory(tenant=tenant_a)
    services.lead_update(lead=lead, owner=new_owner)
    services.lead_transition(lead=lead, to_stage=Stage.SQL, at=AT + HOUR)
    # then the lead is an SQL and each transition keeps the owner and team of its time
    assert lead.stage == Stage.SQL
    assert _stage(tenant_a, lead) == Stage.SQL
    assert _history(tenant_a, lead) == [
        ("lead", "mql", AT, rep_a.pk, team_a.pk, "alice", "score 80"),
        ("mql", "sql", AT + HOUR, new_owner.pk, None, "", ""),
    ]


def test_transition_without_an_owner_takes_the_lead_team(tenant_a, team_a):
    lead = LeadFactory(tenant=tenant_a, team=team_a)
    transition = services.lead_transition(lead=lead, to_stage=Stage.MQL, at=AT)
    assert (transition.owner_id, transition.team_id) == (None, team_a.pk)


@pytest.mark.parametrize(
    ("start", "to_stage"),
    [
        (Stage.LEAD, Stage.SQL),
        (Stage.LEAD, Stage.WON),
        (Stage.MQL, Stage.LEAD),
        (Stage.OPPORTUNITY, Stage.MEETING),
        (Stage.WON, Stage.RECYCLED),
        (Stage.RECYCLED, Stage.OPPORTUNITY),
        (Stage.LOST, Stage.WON),
        (Stage.MQL, Stage.MQL),
    ],
)
def test_invalid_transition_is_refused_and_changes_nothing(tenant_a, start, to_stage):
    # given a lead at `start`
    lead = LeadFactory(tenant=tenant_a, stage=start)
    # when it is moved where the lifecycle does not allow
    with pytest.raises(PublicError) as excinfo:
        services.lead_transition(lead=lead, to_stage=to_stage, at=AT)
    # then it is refused with a typed error, and nothing changed
    assert (excinfo.value.code, excinfo.value.field) == (
        ErrorCode.INVALID_TRANSITION,
        "toStage",
    )
    assert lead.stage == start
    assert _stage(tenant_a, lead) == start
    assert _history(tenant_a, lead) == []
    assert _dirty_days(tenant_a) == []


def test_unknown_stage_is_a_validation_error(tenant_a):
    lead = LeadFactory(tenant=tenant_a)
    with pytest.raises(ValidationFailed) as excinfo:
        services.lead_transition(lead=lead, to_stage="closed", at=AT)
    assert excinfo.value.field == "toStage"
    assert _history(tenant_a, lead) == []


def test_recycled_lead_re_enters_and_each_entry_is_a_transition(tenant_a):
    # given a lead that went to SQL and was sent back to nurture
    lead = LeadFactory(tenant=tenant_a)
    path = [Stage.MQL, Stage.SQL, Stage.RECYCLED, Stage.MQL, Stage.SQL, Stage.MEETING]
    # when it re-enters MQL and SQL
    for hours, stage in enumerate(path):
        services.lead_transition(lead=lead, to_stage=stage, at=AT + hours * HOUR)
    # then every entry is its own row, in order
    assert [(f, t) for f, t, *_ in _history(tenant_a, lead)] == [
        ("lead", "mql"),
        ("mql", "sql"),
        ("sql", "recycled"),
        ("recycled", "mql"),
        ("mql", "sql"),
        ("sql", "meeting"),
    ]
    assert _stage(tenant_a, lead) == Stage.MEETING


def test_transition_dated_before_the_previous_one_is_refused(tenant_a):
    lead = LeadFactory(tenant=tenant_a)
    services.lead_transition(lead=lead, to_stage=Stage.MQL, at=AT)
    with pytest.raises(ValidationFailed) as excinfo:
        services.lead_transition(lead=lead, to_stage=Stage.SQL, at=AT - HOUR)
    assert excinfo.value.field == "at"
    assert _stage(tenant_a, lead) == Stage.MQL
    assert len(_history(tenant_a, lead)) == 1


def test_transition_needs_an_aware_time(tenant_a):
    lead = LeadFactory(tenant=tenant_a)
    with pytest.raises(ValidationFailed) as excinfo:
        services.lead_transition(lead=lead, to_stage=Stage.MQL, at=dt.datetime(2025, 4, 1))
    assert excinfo.value.field == "at"
    assert _history(tenant_a, lead) == []


def test_transition_marks_its_tenant_local_day_dirty(tenant_a):
    # given a transition at 2025-04-01 23:30 UTC, which is April 2 in Tokyo
    lead = LeadFactory(tenant=tenant_a)
    services.lead_transition(
        lead=lead, to_stage=Stage.MQL, at=dt.datetime(2025, 4, 1, 23, 30, tzinfo=dt.UTC)
    )
    assert _dirty_days(tenant_a) == [dt.date(2025, 4, 2)]


def test_actor_of_another_tenant_is_not_found(tenant_a, rep_b):
    lead = LeadFactory(tenant=tenant_a)
    with pytest.raises(NotFound):
        services.lead_transition(lead=lead, to_stage=Stage.MQL, at=AT, actor=rep_b)
    assert _history(tenant_a, lead) == []


# --- leads ----------------------------------------------------------------------------


def test_lead_create_defaults_team_to_owner_team_and_marks_its_day(tenant_a, rep_a, team_a):
    lead = services.lead_create(
        tenant=tenant_a, company=" Acme KK ", owner=rep_a, created_at=AT, source="web"
    )
    with tenant_context(tenant_a):
        stored = Lead.objects.get()
    assert (stored.pk, stored.company, stored.stage, stored.team_id) == (
        lead.pk,
        "Acme KK",
        Stage.LEAD,
        team_a.pk,
    )
    assert _dirty_days(tenant_a) == [dt.date(2025, 4, 1)]


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"company": ""}, ValidationFailed, "company"),
        ({"company": "x", "email": "not-an-email"}, ValidationFailed, "email"),
        ({"company": "x", "created_at": dt.datetime(2025, 4, 1)}, ValidationFailed, "createdAt"),
        ({"company": "x", "stage": "won"}, ValidationFailed, "stage"),
        ({"company": "x", "attributes": ["a"]}, ValidationFailed, "attributes"),
    ],
)
def test_invalid_lead_is_refused_and_creates_nothing(tenant_a, fields, error, field):
    with pytest.raises(error) as excinfo:
        services.lead_create(tenant=tenant_a, **fields)
    assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert Lead.objects.count() == 0
    assert _dirty_days(tenant_a) == []


def test_lead_owner_and_team_of_another_tenant_are_not_found(tenant_a, tenant_b, rep_b):
    team_b = TeamFactory(tenant=tenant_b)
    with pytest.raises(NotFound) as by_owner:
        services.lead_create(tenant=tenant_a, company="x", owner=rep_b)
    with pytest.raises(NotFound) as by_team:
        services.lead_create(tenant=tenant_a, company="x", team=team_b)
    assert (by_owner.value.field, by_team.value.field) == ("ownerId", "teamId")
    with tenant_context(tenant_a):
        assert Lead.objects.count() == 0


def test_duplicate_external_id_is_a_conflict(tenant_a):
    services.lead_create(tenant=tenant_a, company="x", source_system="hubspot", external_id="1")
    with pytest.raises(PublicError) as excinfo:
        services.lead_create(tenant=tenant_a, company="y", source_system="hubspot", external_id="1")
    assert (excinfo.value.code, excinfo.value.field) == (ErrorCode.CONFLICT, "externalId")


def test_lead_update_writes_only_given_fields_and_marks_old_and_new_days(tenant_a):
    lead = LeadFactory(tenant=tenant_a, company="Old", contact_name="Sato")
    updated = services.lead_update(lead=lead, company="New", created_at=AT + 24 * HOUR)
    assert (updated.company, updated.contact_name) == ("New", "Sato")
    assert _dirty_days(tenant_a) == [dt.date(2025, 4, 1), dt.date(2025, 4, 2)]


def test_lead_update_cannot_change_the_stage(tenant_a):
    lead = LeadFactory(tenant=tenant_a)
    with pytest.raises(ValidationFailed) as excinfo:
        services.lead_update(lead=lead, stage=Stage.WON)
    assert excinfo.value.field == "stage"
    assert _stage(tenant_a, lead) == Stage.LEAD


# --- activities -----------------------------------------------------------------------


def test_activity_create_and_its_validation(tenant_a, rep_a, rep_b):
    lead = LeadFactory(tenant=tenant_a)
    activity = services.activity_create(
        tenant=tenant_a,
        lead=lead,
        rep=rep_a,
        type="call",
        occurred_at=AT,
        call_outcome="connected",
        duration_seconds=120,
    )
    assert (activity.type, activity.call_outcome, activity.rep_id) == (
        "call",
        "connected",
        rep_a.pk,
    )
    refusals = [
        ({"type": "fax", "occurred_at": AT}, "type"),
        ({"type": "email", "occurred_at": AT, "call_outcome": "connected"}, "callOutcome"),
        ({"type": "call", "occurred_at": dt.datetime(2025, 4, 1)}, "occurredAt"),
        ({"type": "call", "occurred_at": AT, "call_outcome": "maybe"}, "callOutcome"),
        ({"type": "call", "occurred_at": AT, "rep": rep_b}, "repId"),
    ]
    for kwargs, field in refusals:
        with pytest.raises(PublicError) as excinfo:
            services.activity_create(tenant=tenant_a, lead=lead, **kwargs)
        assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert Activity.objects.count() == 1


# --- deals ----------------------------------------------------------------------------


def test_deal_create_records_its_first_stage_and_defaults(tenant_a, rep_a):
    # given a lead owned by a rep
    lead = LeadFactory(tenant=tenant_a, owner=rep_a)
    # when a deal is created without stage, currency or owner
    deal = services.deal_create(
        tenant=tenant_a, lead=lead, amount=Decimal("1200000"), created_at=AT
    )
    # then it opens in the first open stage, in the tenant's currency, owned by the lead owner
    with tenant_context(tenant_a):
        changes = list(DealStageChange.objects.values_list("deal_id", "stage__name", "at"))
    assert (deal.stage.name, deal.currency, deal.owner_id, deal.amount, deal.closed_at) == (
        "初回商談",
        "JPY",
        rep_a.pk,
        Decimal("1200000.00"),
        None,
    )
    assert changes == [(deal.pk, "初回商談", AT)]
    assert _dirty_days(tenant_a) == [dt.date(2025, 4, 1)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": Decimal("-1")}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": Decimal("1.005")}, "amount"),
        ({"amount": Decimal("NaN")}, "amount"),
        ({"amount": Decimal("1"), "currency": "YEN!"}, "currency"),
        ({"amount": Decimal("1"), "currency": "JP"}, "currency"),
        ({"amount": Decimal("1"), "created_at": dt.datetime(2025, 4, 1)}, "createdAt"),
    ],
)
def test_invalid_deal_is_refused_and_creates_nothing(tenant_a, kwargs, field):
    lead = LeadFactory(tenant=tenant_a)
    with pytest.raises(ValidationFailed) as excinfo:
        services.deal_create(tenant=tenant_a, lead=lead, **kwargs)
    assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert (Deal.objects.count(), DealStageChange.objects.count()) == (0, 0)


def test_deal_references_of_another_tenant_are_not_found(tenant_a, tenant_b, rep_b):
    lead_a = LeadFactory(tenant=tenant_a)
    lead_b = LeadFactory(tenant=tenant_b)
    stage_b = _deal_stages(tenant_b)["提案"]
    for kwargs, field in [
        ({"lead": lead_b}, "leadId"),
        ({"lead": lead_a, "owner": rep_b}, "ownerId"),
        ({"lead": lead_a, "stage": stage_b}, "stageId"),
    ]:
        with pytest.raises(NotFound) as excinfo:
            services.deal_create(tenant=tenant_a, amount=Decimal("1"), **kwargs)
        assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert Deal.objects.count() == 0


def test_deal_move_stage_closes_on_won_and_reopens(tenant_a):
    # given an open deal
    stages = _deal_stages(tenant_a)
    deal = services.deal_create(
        tenant=tenant_a, lead=LeadFactory(tenant=tenant_a), amount=Decimal("10"), created_at=AT
    )
    # when it moves to proposal, then won, then back to negotiation
    services.deal_move_stage(deal=deal, stage=stages["提案"], at=AT + HOUR)
    won = services.deal_move_stage(deal=deal, stage=stages["受注"], at=AT + 2 * HOUR)
    reopened = services.deal_move_stage(deal=deal, stage=stages["最終交渉"], at=AT + 3 * HOUR)
    # then won closed it, reopening cleared it, and every stage entry is a row
    assert won.closed_at == AT + 2 * HOUR
    assert reopened.closed_at is None
    with tenant_context(tenant_a):
        changes = list(DealStageChange.objects.values_list("stage__name", "at"))
    assert changes == [
        ("初回商談", AT),
        ("提案", AT + HOUR),
        ("受注", AT + 2 * HOUR),
        ("最終交渉", AT + 3 * HOUR),
    ]


def test_deal_move_stage_refusals_change_nothing(tenant_a, tenant_b):
    stages = _deal_stages(tenant_a)
    deal = DealFactory(tenant=tenant_a)
    for kwargs, error, field in [
        ({"stage": deal.stage}, ValidationFailed, "stageId"),
        ({"stage": stages["提案"], "at": AT - HOUR}, ValidationFailed, "at"),
        ({"stage": _deal_stages(tenant_b)["提案"]}, NotFound, "stageId"),
    ]:
        with pytest.raises(error) as excinfo:
            services.deal_move_stage(deal=deal, **kwargs)
        assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert Deal.objects.get().stage_id == deal.stage_id
        assert DealStageChange.objects.count() == 0
