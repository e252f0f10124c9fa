"""GraphQL queries of the pipeline app: lists of leads, activities and deals, and stages."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
import strawberry_django
from strawberry import relay
from strawberry_django.relay import DjangoListConnection

from pipeline import selectors
from pipeline.graphql.filters import (
    ActivityFilter,
    ActivityOrder,
    DealFilter,
    DealOrder,
    LeadFilter,
    LeadOrder,
    NoMatch,
)
from pipeline.graphql.types import ActivityType, DealStageType, DealType, LeadType
from pipeline.models import Activity, Deal, Lead
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.scopes import Scope


@strawberry.type
class PipelineQuery:
    @strawberry_django.connection(
        DjangoListConnection[LeadType], description="The workspace's leads, newest first."
    )
    def leads(
        self, info: Info, filter: LeadFilter | None = None, order_by: LeadOrder | None = None
    ) -> Iterable[Lead]:
        info.context.require_scope(Scope.RECORDS_READ)
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Lead.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.lead_list(**criteria, order=order)

    @strawberry_django.field(description="One lead by its id.")
    def lead(self, info: Info, id: relay.GlobalID) -> LeadType:
        info.context.require_scope(Scope.RECORDS_READ)
        return resolve_global_id(info, id, model=Lead, type_name="Lead", field="id")  # type: ignore[return-value]

    @strawberry_django.connection(
        DjangoListConnection[ActivityType], description="The workspace's activities, newest first."
    )
    def activities(
        self,
        info: Info,
        filter: ActivityFilter | None = None,
        order_by: ActivityOrder | None = None,
    ) -> Iterable[Activity]:
        info.context.require_scope(Scope.RECORDS_READ)
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Activity.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.activity_list(**criteria, order=order)

    @strawberry_django.connection(
        DjangoListConnection[DealType], description="The workspace's deals, newest first."
    )
    def deals(
        self, info: Info, filter: DealFilter | None = None, order_by: DealOrder | None = None
    ) -> Iterable[Deal]:
        info.context.require_scope(Scope.RECORDS_READ)
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Deal.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.deal_list(**criteria, order=order)

    @strawberry_django.field(description="One deal by its id.")
    def deal(self, info: Info, id: relay.GlobalID) -> DealType:
        info.context.require_scope(Scope.RECORDS_READ)
        return resolve_global_id(info, id, model=Deal, type_name="Deal", field="id")  # type: ignore[return-value]

    @strawberry_django.field(description="The workspace's deal stages, in order.")
    def deal_stages(self, info: Info) -> list[DealStageType]:
        info.context.require_scope(Scope.RECORDS_READ)
        return selectors.deal_stage_list()  # type: ignore[return-value]
