"""GraphQL of the handoff queue: SQL handoffs awaiting acceptance, accepting and returning
them (戻し), and the routing simulation of a draft version."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from handoff.handoffs import allowed_return_reasons, handoff_accept, handoff_return
from handoff.models import Handoff, RuleVersion
from handoff.queue import handoff_queue_page
from handoff.simulation import Simulation, routing_simulate
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.models import Membership, Team
from tenants.principal import PrincipalKind
from tenants.scopes import Scope

HANDOFF, VERSION = "Handoff", "RuleVersion"


def _gid(type_name: str, pk: Any) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


@strawberry.enum(name="HandoffState")
class HandoffStateEnum(Enum):
    AWAITING = "awaiting"
    ACCEPTED = "accepted"
    RETURNED = "returned"


@strawberry.type(name="HandoffMember", description="A member a lead is handed to.")
class HandoffMemberType:
    id: strawberry.ID
    name: str

    @classmethod
    def of(cls, member: Membership | None) -> HandoffMemberType | None:
        if member is None:
            return None
        return cls(
            id=_gid("Membership", member.pk), name=member.display_name or member.user.username
        )


@strawberry.type(name="Handoff", description="An SQL handed to field sales.")
class HandoffType:
    id: strawberry.ID
    lead_id: strawberry.ID
    company: str
    state: HandoffStateEnum
    owner: HandoffMemberType | None
    rule_version_id: strawberry.ID | None
    handed_at: dt.datetime
    sla_hours: int | None = strawberry.field(description="Business hours to accept or return.")
    due_at: dt.datetime | None
    business_minutes_left: int | None = strawberry.field(
        description="SLA business minutes left (negative once breached); null: no SLA."
    )
    breached: bool = strawberry.field(description="More than the SLA's business hours passed.")
    breached_at: dt.datetime | None
    accepted_at: dt.datetime | None
    returned_at: dt.datetime | None
    return_reason: str
    return_note: str
    allowed_return_reasons: list[str] = strawberry.field(
        description="The reasons this handoff may be returned with (its rule version's)."
    )

    @classmethod
    def of(cls, handoff: Handoff, left: dt.timedelta | None = None) -> HandoffType:
        minutes = None if left is None else int(left.total_seconds() // 60)
        return cls(
            id=_gid(HANDOFF, handoff.pk),
            lead_id=_gid("Lead", handoff.lead_id),
            company=handoff.lead.company,
            state=HandoffStateEnum(handoff.state),
            owner=HandoffMemberType.of(handoff.owner),
            rule_version_id=None
            if handoff.version_id is None
            else _gid(VERSION, handoff.version_id),
            handed_at=handoff.handed_at,
            sla_hours=handoff.sla_hours,
            due_at=handoff.due_at,
            business_minutes_left=minutes,
            breached=handoff.breached_at is not None
            or (left is not None and left < dt.timedelta(0)),
            breached_at=handoff.breached_at,
            accepted_at=handoff.accepted_at,
            returned_at=handoff.returned_at,
            return_reason=handoff.return_reason,
            return_note=handoff.return_note,
            allowed_return_reasons=allowed_return_reasons(handoff.version),
        )


@strawberry.type(name="HandoffPage")
class HandoffPage:
    total_count: int
    items: list[HandoffType]


@strawberry.type(name="SimulatedMemberLoad")
class SimulatedMemberLoadType:
    member_id: strawberry.ID
    name: str
    assigned: int
    max_per_period: int = strawberry.field(
        description="The most leads in one capacity period (0 without a capacity cap)."
    )


@strawberry.type(name="SimulatedStage")
class SimulatedStageType:
    stage: str
    strategy: str | None
    leads: int
    unassigned: int
    capacity_overflows: int
    members: list[SimulatedMemberLoadType]
    sla_hours: int | None
    sla_met: int
    sla_breached: int
    sla_open: int


@strawberry.type(name="RoutingSimulation", description="A replay that changed nothing.")
class RoutingSimulationType:
    weeks: int
    start: dt.datetime
    end: dt.datetime
    stages: list[SimulatedStageType]

    @classmethod
    def of(cls, sim: Simulation) -> RoutingSimulationType:
        return cls(
            weeks=sim.weeks,
            start=sim.start,
            end=sim.end,
            stages=[
                SimulatedStageType(
                    stage=s.stage,
                    strategy=s.strategy,
                    leads=s.leads,
                    unassigned=s.unassigned,
                    capacity_overflows=s.capacity_overflows,
                    members=[
                        SimulatedMemberLoadType(
                            member_id=_gid("Membership", m.member_id),
                            name=m.name,
                            assigned=m.assigned,
                            max_per_period=m.max_per_period,
                        )
                        for m in s.members
                    ],
                    sla_hours=s.sla_hours,
                    sla_met=s.sla_met,
                    sla_breached=s.sla_breached,
                    sla_open=s.sla_open,
                )
                for s in sim.stages
            ],
        )


@strawberry.input
class HandoffReturnInput:
    id: relay.GlobalID
    reason: str = strawberry.field(description="One of the handoff's allowedReturnReasons.")
    note: str = ""


@strawberry.type
class HandoffPayload(MutationPayload):
    handoff: HandoffType | None = None


def _actor(info: Info) -> Membership | None:
    principal = info.context.principal
    return principal.membership if principal.kind == PrincipalKind.USER else None


def _handoff(info: Info, global_id: relay.GlobalID) -> Handoff:
    return resolve_global_id(info, global_id, model=Handoff, type_name=HANDOFF, field="id")


@strawberry.type
class HandoffQueueQuery:
    @query(
        scope=Scope.HANDOFF_READ,
        description=(
            "SQL handoffs awaiting acceptance, soonest due first, with the SLA business time "
            "left (handoff:read); filter by owner or by the owners' team."
        ),
    )
    def handoff_queue(
        self,
        info: Info,
        owner_id: relay.GlobalID | None = None,
        team_id: relay.GlobalID | None = None,
        first: int = 50,
        offset: int = 0,
    ) -> HandoffPage:
        tenant = info.context.require_tenant()
        owner = (
            None
            if owner_id is None
            else resolve_global_id(
                info, owner_id, model=Membership, type_name="Membership", what="Member",
                field="ownerId",
            )
        )  # fmt: skip
        team = (
            None
            if team_id is None
            else resolve_global_id(info, team_id, model=Team, type_name="Team", field="teamId")
        )
        items, total = handoff_queue_page(
            tenant=tenant, owner=owner, team=team, first=first, offset=offset
        )
        return HandoffPage(
            total_count=total,
            items=[HandoffType.of(i.handoff, i.business_time_left) for i in items],
        )

    @query(
        scope=Scope.HANDOFF_READ,
        description=(
            "Replay the last `weeks` weeks of leads that became MQL or SQL through a rule "
            "version's routing and SLA (handoff:read): distribution, load per rep, capacity "
            "overflows and SLA effect. Changes nothing."
        ),
    )
    def routing_simulation(
        self, info: Info, version_id: relay.GlobalID, weeks: int = 4
    ) -> RoutingSimulationType:
        tenant = info.context.require_tenant()
        version = resolve_global_id(
            info, version_id, model=RuleVersion, type_name=VERSION, what="Rule version",
            field="versionId",
        )  # fmt: skip
        return RoutingSimulationType.of(
            routing_simulate(tenant=tenant, version=version, weeks=weeks)
        )


@strawberry.type
class HandoffQueueMutation:
    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description="Accept a handed-over SQL (handoff:write; its owner or a manager).",
    )
    def handoff_accept(self, info: Info, id: relay.GlobalID) -> HandoffPayload:
        handoff = handoff_accept(handoff=_handoff(info, id), actor=_actor(info))
        return HandoffPayload(handoff=HandoffType.of(handoff))

    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description=(
            "Return a handed-over SQL to nurture (戻し) with one of its allowed reasons "
            "(handoff:write; its owner or a manager)."
        ),
    )
    def handoff_return(self, info: Info, input: HandoffReturnInput) -> HandoffPayload:
        handoff = handoff_return(
            handoff=_handoff(info, input.id),
            reason=input.reason,
            note=input.note,
            actor=_actor(info),
        )
        return HandoffPayload(handoff=HandoffType.of(handoff))
