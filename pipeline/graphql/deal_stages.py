"""GraphQL mutations of the sales process: the workspace's deal stages (config:write)."""

from __future__ import annotations

from decimal import Decimal

import strawberry
from strawberry import relay

from pipeline import deal_stages
from pipeline.graphql.types import DealStageType
from pipeline.models import DealStage
from tenants.graphql.base import resolve_global_id, sent_changes
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.scopes import Scope

_MEANING = (
    "A new win probability or won/lost flag rebuilds the workspace's KPI snapshots (the "
    "weighted pipeline and won deals of every period follow it)."
)


@strawberry.input
class CreateDealStageInput:
    name: str
    win_probability: Decimal = strawberry.field(description="受注確度, 0 to 1 (4 decimals).")
    is_won: bool = False
    is_lost: bool = False
    order: int | None = strawberry.field(
        default=None, description="1 to the number of stages + 1; the end if empty."
    )


@strawberry.input(description="Only the fields sent are changed.")
class UpdateDealStageInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    win_probability: Decimal | None = strawberry.UNSET
    is_won: bool | None = strawberry.UNSET
    is_lost: bool | None = strawberry.UNSET
    order: int | None = strawberry.field(
        default=strawberry.UNSET, description="Its new place, 1 to the number of stages."
    )


@strawberry.type
class DealStagePayload(MutationPayload):
    deal_stage: DealStageType | None = None


@strawberry.type
class DeleteDealStagePayload(MutationPayload):
    deleted_id: relay.GlobalID | None = None


def _stage(info: Info, global_id: relay.GlobalID) -> DealStage:
    return resolve_global_id(
        info, global_id, model=DealStage, type_name="DealStage", what="Deal stage", field="id"
    )


@strawberry.type
class DealStageMutation:
    @mutation(scope=Scope.CONFIG_WRITE, description="Add a deal stage (needs config:write).")
    def create_deal_stage(self, info: Info, input: CreateDealStageInput) -> DealStagePayload:
        tenant = info.context.require_tenant()
        stage = deal_stages.deal_stage_create(
            tenant=tenant,
            name=input.name,
            win_probability=input.win_probability,
            is_won=input.is_won,
            is_lost=input.is_lost,
            order=input.order,
        )
        return DealStagePayload(deal_stage=stage)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description=f"Rename, reorder or re-weigh a deal stage (needs config:write). {_MEANING}",
    )
    def update_deal_stage(self, info: Info, input: UpdateDealStageInput) -> DealStagePayload:
        stage = _stage(info, input.id)
        changes = sent_changes(input, ("name", "win_probability", "is_won", "is_lost", "order"))
        updated = deal_stages.deal_stage_update(stage=stage, **changes)
        return DealStagePayload(deal_stage=updated)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description="Delete a deal stage no deal is or was in (needs config:write).",
    )
    def delete_deal_stage(self, info: Info, id: relay.GlobalID) -> DeleteDealStagePayload:
        deal_stages.deal_stage_delete(stage=_stage(info, id))
        return DeleteDealStagePayload(deleted_id=id)
