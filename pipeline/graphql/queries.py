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
from tenants.graphql.operations import query
from tenants.scopes import Scope


@strawberry.type
class PipelineQuery:
    @query(
        DjangoListConnection[LeadType],
        description="The workspace's leads, newest first.",
        scope=Scope.RECORDS_READ,
        field=strawberry_django.connection,
    )
    def leads(
        self, info: Info, filter: LeadFilter | None = None, order_by: LeadOrder | None = None
    ) -> Iterable[Lead]:
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Lead.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.lead_list(**criteria, order=order)

    @query(
        description="One lead by its id.", scope=Scope.RECORDS_READ, field=strawberry_django.field
    )
    def lead(self, info: Info, id: relay.GlobalID) -> LeadType:
        return resolve_global_id(info, id, model=Lead, type_name="Lead", field="id")  # type: ignore[return-value]

    @query(
        DjangoListConnection[ActivityType],
        description="The workspace's activities, newest first.",
        scope=Scope.RECORDS_READ,
        field=strawberry_django.connection,
    )
    def activities(
        self,
        info: Info,
        filter: ActivityFilter | None = None,
        order_by: ActivityOrder | None = None,
    ) -> Iterable[Activity]:
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Activity.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.activity_list(**criteria, order=order)

    @query(
        DjangoListConnection[DealType],
        description="The workspace's deals, newest first.",
        scope=Scope.RECORDS_READ,
        field=strawberry_django.connection,
    )
    def deals(
        self, info: Info, filter: DealFilter | None = None, order_by: DealOrder | None = None
    ) -> Iterable[Deal]:
        try:
            criteria = filter.criteria(info) if filter is not None else {}
        except NoMatch:
            return Deal.objects.none()
        order = order_by.criteria() if order_by is not None else None
        return selectors.deal_list(**criteria, order=order)

    @query(
        description="One deal by its id.", scope=Scope.RECORDS_READ, field=strawberry_django.field
    )
    def deal(self, info: Info, id: relay.GlobalID) -> DealType:
        return resolve_global_id(info, id, model=Deal, type_name="Deal", field="id")  # type: ignore[return-value]

    @query(
        description="The workspace's deal stages, in order.",
        scope=Scope.RECORDS_READ,
        field=strawberry_django.field,
    )
    def deal_stages(self, info: Info) -> list[DealStageType]:
        return selectors.deal_stage_list()  # type: ignore[return-value]
