"""GraphQL mutations of the pipeline app: leads, their lifecycle, activities and deals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from pipeline import services
from pipeline.graphql.types import (
    ActivityKind,
    ActivityType,
    CallOutcome,
    DealType,
    LeadStage,
    LeadType,
    StageTransitionType,
)
from pipeline.models import Deal, DealStage, Lead
from tenants.graphql.base import given, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.models import Membership, Team
from tenants.principal import PrincipalKind
from tenants.scopes import Scope


def _member(info: Info, global_id: relay.GlobalID | None, field: str) -> Membership | None:
    if global_id is None:
        return None
    return resolve_global_id(
        info, global_id, model=Membership, type_name="Membership", what="Member", field=field
    )


def _team(info: Info, global_id: relay.GlobalID | None, field: str) -> Team | None:
    if global_id is None:
        return None
    return resolve_global_id(info, global_id, model=Team, type_name="Team", field=field)


def _lead(info: Info, global_id: relay.GlobalID, field: str) -> Lead:
    return resolve_global_id(info, global_id, model=Lead, type_name="Lead", field=field)


def _actor(info: Info) -> tuple[Membership | None, str]:
    """Who is acting: the member (users), and a label that outlives them."""
    principal = info.context.principal
    if principal.kind == PrincipalKind.TOKEN and principal.token is not None:
        return None, f"token:{principal.token.name}"
    if principal.user is not None:
        return principal.membership, principal.user.get_username()
    return None, ""


@strawberry.input
class CreateLeadInput:
    company: str
    contact_name: str = ""
    email: str = ""
    industry: str = ""
    employee_count: int | None = None
    title: str = ""
    attributes: JSON | None = None
    source: str = ""
    source_system: str = ""
    external_id: str | None = None
    owner_id: relay.GlobalID | None = None
    team_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Defaults to the owner's team."
    )
    score: int = 0
    created_at: dt.datetime | None = strawberry.field(
        default=None, description="When the lead was created in the source system; now if empty."
    )


@strawberry.input(description="Only the fields sent are changed; send null to clear one.")
class UpdateLeadInput:
    id: relay.GlobalID
    company: str | None = strawberry.UNSET
    contact_name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    industry: str | None = strawberry.UNSET
    employee_count: int | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    owner_id: relay.GlobalID | None = strawberry.UNSET
    team_id: relay.GlobalID | None = strawberry.UNSET
    score: int | None = strawberry.UNSET
    created_at: dt.datetime | None = strawberry.UNSET


@strawberry.input
class TransitionLeadInput:
    id: relay.GlobalID
    to_stage: LeadStage  # type: ignore[valid-type]
    at: dt.datetime | None = strawberry.field(default=None, description="Now if empty.")
    reason: str = ""


@strawberry.input
class CreateActivityInput:
    lead_id: relay.GlobalID
    type: ActivityKind  # type: ignore[valid-type]
    occurred_at: dt.datetime
    rep_id: relay.GlobalID | None = None
    call_outcome: CallOutcome | None = None  # type: ignore[valid-type]
    email_delivered: bool = False
    email_opened: bool = False
    email_clicked: bool = False
    duration_seconds: int | None = None
    source_system: str = ""
    external_id: str | None = None


@strawberry.input
class CreateDealInput:
    lead_id: relay.GlobalID
    amount: Decimal
    currency: str | None = strawberry.field(default=None, description="The workspace's if empty.")
    stage_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The first open stage if empty."
    )
    name: str = ""
    owner_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The lead's owner if empty."
    )
    sourced_by_is: bool = True
    created_at: dt.datetime | None = None
    source_system: str = ""
    external_id: str | None = None


@strawberry.input
class MoveDealStageInput:
    id: relay.GlobalID
    stage_id: relay.GlobalID
    at: dt.datetime | None = strawberry.field(default=None, description="Now if empty.")


@strawberry.type
class CreateLeadPayload(MutationPayload):
    lead: LeadType | None = None


@strawberry.type
class UpdateLeadPayload(MutationPayload):
    lead: LeadType | None = None


@strawberry.type
class TransitionLeadPayload(MutationPayload):
    lead: LeadType | None = None
    transition: StageTransitionType | None = None


@strawberry.type
class CreateActivityPayload(MutationPayload):
    activity: ActivityType | None = None


@strawberry.type
class CreateDealPayload(MutationPayload):
    deal: DealType | None = None


@strawberry.type
class MoveDealStagePayload(MutationPayload):
    deal: DealType | None = None


_UPDATABLE_LEAD_FIELDS = (
    "company",
    "contact_name",
    "email",
    "industry",
    "employee_count",
    "title",
    "attributes",
    "source",
    "score",
    "created_at",
)
# Fields whose null means "empty" rather than "unknown" in the model.
_BLANK_WHEN_NULL = {"company", "contact_name", "email", "industry", "title", "source"}


@strawberry.type
class PipelineMutation:
    @mutation(scope=Scope.RECORDS_WRITE, description="Create a lead at the 'lead' stage.")
    def create_lead(self, info: Info, input: CreateLeadInput) -> CreateLeadPayload:
        tenant = info.context.require_tenant()
        fields: dict[str, Any] = {
            "company": input.company,
            "contact_name": input.contact_name,
            "email": input.email,
            "industry": input.industry,
            "employee_count": input.employee_count,
            "title": input.title,
            "attributes": input.attributes or {},
            "source": input.source,
            "source_system": input.source_system,
            "external_id": input.external_id,
            "owner": _member(info, input.owner_id, "ownerId"),
            "score": input.score,
        }
        if input.team_id is not None:
            fields["team"] = _team(info, input.team_id, "teamId")
        if input.created_at is not None:
            fields["created_at"] = input.created_at
        lead = services.lead_create(tenant=tenant, **fields)
        return CreateLeadPayload(lead=lead)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.RECORDS_WRITE,
        description="Change a lead's details; its stage changes by transition.",
    )
    def update_lead(self, info: Info, input: UpdateLeadInput) -> UpdateLeadPayload:
        lead = _lead(info, input.id, "id")
        fields: dict[str, Any] = {}
        for name in _UPDATABLE_LEAD_FIELDS:
            value = getattr(input, name)
            if given(value):
                fields[name] = "" if value is None and name in _BLANK_WHEN_NULL else value
        if given(input.owner_id):
            fields["owner"] = _member(info, input.owner_id, "ownerId")
        if given(input.team_id):
            fields["team"] = _team(info, input.team_id, "teamId")
        if fields.get("attributes", {}) is None:
            fields["attributes"] = {}
        if "score" in fields and fields["score"] is None:
            fields["score"] = 0
        updated = services.lead_update(lead=lead, **fields)
        return UpdateLeadPayload(lead=updated)  # type: ignore[arg-type]

    @mutation(scope=Scope.RECORDS_WRITE, description="Move a lead to another lifecycle stage.")
    def transition_lead(self, info: Info, input: TransitionLeadInput) -> TransitionLeadPayload:
        lead = _lead(info, input.id, "id")
        actor, actor_label = _actor(info)
        transition = services.lead_transition(
            lead=lead,
            to_stage=input.to_stage.value,
            at=input.at,
            actor=actor,
            actor_label=actor_label,
            reason=input.reason,
        )
        return TransitionLeadPayload(lead=lead, transition=transition)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.RECORDS_WRITE,
        description="Record a call, e-mail, meeting or other touch of a lead.",
    )
    def create_activity(self, info: Info, input: CreateActivityInput) -> CreateActivityPayload:
        tenant = info.context.require_tenant()
        activity = services.activity_create(
            tenant=tenant,
            lead=_lead(info, input.lead_id, "leadId"),
            rep=_member(info, input.rep_id, "repId"),
            type=input.type.value,
            occurred_at=input.occurred_at,
            call_outcome=input.call_outcome.value if input.call_outcome is not None else "",
            email_delivered=input.email_delivered,
            email_opened=input.email_opened,
            email_clicked=input.email_clicked,
            duration_seconds=input.duration_seconds,
            source_system=input.source_system,
            external_id=input.external_id,
        )
        return CreateActivityPayload(activity=activity)  # type: ignore[arg-type]

    @mutation(scope=Scope.RECORDS_WRITE, description="Create a deal for a lead, in a stage.")
    def create_deal(self, info: Info, input: CreateDealInput) -> CreateDealPayload:
        tenant = info.context.require_tenant()
        stage = (
            resolve_global_id(
                info, input.stage_id, model=DealStage, type_name="DealStage", field="stageId"
            )
            if input.stage_id is not None
            else None
        )
        deal = services.deal_create(
            tenant=tenant,
            lead=_lead(info, input.lead_id, "leadId"),
            amount=input.amount,
            currency=input.currency,
            stage=stage,
            name=input.name,
            owner=_member(info, input.owner_id, "ownerId"),
            sourced_by_is=input.sourced_by_is,
            created_at=input.created_at,
            source_system=input.source_system,
            external_id=input.external_id,
        )
        return CreateDealPayload(deal=deal)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.RECORDS_WRITE,
        description="Move a deal to another stage; won/lost stages close it.",
    )
    def move_deal_stage(self, info: Info, input: MoveDealStageInput) -> MoveDealStagePayload:
        deal = resolve_global_id(info, input.id, model=Deal, type_name="Deal", field="id")
        stage = resolve_global_id(
            info, input.stage_id, model=DealStage, type_name="DealStage", field="stageId"
        )
        moved = services.deal_move_stage(deal=deal, stage=stage, at=input.at)
        return MoveDealStagePayload(deal=moved)  # type: ignore[arg-type]
