"""GraphQL API of report subscriptions: which reports a member receives (report.ready)."""

from __future__ import annotations

import strawberry
from strawberry import relay

from kpis.graphql.types import KpiScopeType
from reports import subscriptions
from reports.graphql.reports import ReportKindEnum
from reports.models import ReportKind
from tenants.errors import PermissionDenied, ValidationFailed
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.models import Membership
from tenants.scopes import Scope

MEMBER = "Membership"


@strawberry.type(
    name="ReportSubscription",
    description="Whether a member receives one kind of report (in-app, e-mail) when it is "
    "generated, and which view: a rep their own, a manager their team's, others the "
    "workspace's.",
)
class ReportSubscriptionType:
    member_id: strawberry.ID
    kind: ReportKindEnum  # type: ignore[valid-type]
    subscribed: bool
    is_default: bool = strawberry.field(description="No choice recorded: subscribed.")
    view: KpiScopeType

    @classmethod
    def of(cls, state: subscriptions.SubscriptionState) -> ReportSubscriptionType:
        return cls(
            member_id=strawberry.ID(relay.to_base64(MEMBER, state.member.pk)),
            kind=ReportKind(state.kind),
            subscribed=state.subscribed,
            is_default=state.is_default,
            view=KpiScopeType.from_scope(state.view),
        )


@strawberry.type(name="ReportSubscriptionPayload")
class ReportSubscriptionPayload(MutationPayload):
    subscriptions: list[ReportSubscriptionType] | None = None


def _member(info: Info, member_id: relay.GlobalID | None) -> Membership:
    """The caller's own membership, or (config:write) another member of the workspace."""
    principal = info.context.principal
    own = principal.membership
    if member_id is None:
        if own is None:
            raise ValidationFailed(
                "An API token has no subscriptions of its own; pass memberId.", field="memberId"
            )
        return own
    member = resolve_global_id(
        info, member_id, model=Membership, type_name=MEMBER, what="Member", field="memberId"
    )
    if (own is None or member.pk != own.pk) and not principal.has_scope(Scope.CONFIG_WRITE):
        raise PermissionDenied(
            f"Another member's subscriptions need the '{Scope.CONFIG_WRITE}' permission."
        )
    return member


@strawberry.type
class ReportSubscriptionQuery:
    @query(
        scope=Scope.KPIS_READ,
        description="Which reports a member receives, per kind (kpis:read). Without "
        "`memberId`: the caller's own; another member's need config:write.",
    )
    def report_subscriptions(
        self, info: Info, member_id: relay.GlobalID | None = None
    ) -> list[ReportSubscriptionType]:
        member = _member(info, member_id)
        states = subscriptions.report_subscriptions(member=member)
        return [ReportSubscriptionType.of(s) for s in states]


@strawberry.type
class ReportSubscriptionMutation:
    @mutation(
        scope=Scope.KPIS_READ,
        description="Receive, or stop receiving, one kind of report (kpis:read for one's "
        "own; config:write for another member's).",
    )
    def set_report_subscription(
        self,
        info: Info,
        kind: ReportKindEnum,  # type: ignore[valid-type]
        subscribed: bool,
        member_id: relay.GlobalID | None = None,
    ) -> ReportSubscriptionPayload:
        tenant = info.context.require_tenant()
        member = _member(info, member_id)
        states = subscriptions.report_subscription_set(
            tenant=tenant, member=member, kind=ReportKind(kind).value, subscribed=subscribed
        )
        return ReportSubscriptionPayload(
            subscriptions=[ReportSubscriptionType.of(s) for s in states]
        )
