"""GraphQL types of the pipeline app; every one is scoped to the request's tenant."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
import strawberry_django
from strawberry import auto, relay
from strawberry.scalars import JSON
from strawberry_django.relay import DjangoListConnection

from pipeline import models
from pipeline.lifecycle import Stage
from tenants.graphql.base import TenantScoped
from tenants.graphql.types import MembershipType, TeamType

LeadStage = strawberry.enum(Stage, name="LeadStage", description="A lead's lifecycle stage.")
ActivityKind = strawberry.enum(
    models.Activity.Type, name="ActivityKind", description="What kind of touch an activity is."
)
CallOutcome = strawberry.enum(
    models.Activity.CallOutcome, name="CallOutcome", description="How a call ended."
)


@strawberry_django.type(models.StageTransition, name="StageTransition")
class StageTransitionType(TenantScoped, relay.Node):
    from_stage: LeadStage
    to_stage: LeadStage
    at: auto
    actor: MembershipType | None
    actor_label: auto
    reason: auto
    owner: MembershipType | None = strawberry_django.field(
        description="The lead's owner at the time of the change."
    )
    team: TeamType | None = strawberry_django.field(
        description="The owner's team at the time of the change."
    )


@strawberry_django.type(models.Activity, name="Activity")
class ActivityType(TenantScoped, relay.Node):
    source_system: auto
    external_id: auto
    lead: LeadType
    rep: MembershipType | None
    type: ActivityKind
    occurred_at: auto
    email_delivered: auto
    email_opened: auto
    email_clicked: auto
    duration_seconds: auto
    received_at: auto

    @strawberry_django.field(only=["call_outcome"], description="Calls only; null otherwise.")
    def call_outcome(self) -> CallOutcome | None:  # type: ignore[valid-type]
        return self.call_outcome or None  # type: ignore[attr-defined]


@strawberry_django.type(models.Lead, name="Lead")
class LeadType(TenantScoped, relay.Node):
    source_system: auto
    external_id: auto
    company: auto
    contact_name: auto
    email: auto
    industry: auto
    employee_count: auto
    title: auto
    attributes: JSON
    source: auto
    owner: MembershipType | None
    team: TeamType | None
    stage: LeadStage
    score: auto
    created_at: dt.datetime = strawberry_django.field(
        description="When the lead was created in the source system."
    )
    received_at: auto
    updated_at: auto
    transitions: list[StageTransitionType] = strawberry_django.field(
        description="Every lifecycle change of the lead, oldest first."
    )
    activities: DjangoListConnection[ActivityType] = strawberry_django.connection(
        description="The lead's activities, newest first."
    )


@strawberry_django.type(models.DealStage, name="DealStage")
class DealStageType(TenantScoped, relay.Node):
    name: auto
    order: auto
    win_probability: Decimal = strawberry_django.field(description="受注確度, 0 to 1.")
    is_won: auto
    is_lost: auto


@strawberry_django.type(models.DealStageChange, name="DealStageChange")
class DealStageChangeType(TenantScoped, relay.Node):
    stage: DealStageType
    at: auto


@strawberry_django.type(models.Deal, name="Deal")
class DealType(TenantScoped, relay.Node):
    source_system: auto
    external_id: auto
    lead: LeadType
    name: auto
    amount: Decimal
    currency: auto
    stage: DealStageType
    owner: MembershipType | None
    sourced_by_is: auto
    created_at: auto
    closed_at: auto
    received_at: auto
    stage_changes: list[DealStageChangeType] = strawberry_django.field(
        description="Every stage the deal entered, oldest first."
    )
