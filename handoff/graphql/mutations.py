"""GraphQL mutations of handoff (handoff:write): drafts, agreement, activation, handoffs."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from handoff import services
from handoff.graphql.queries import version_of, with_approvals
from handoff.graphql.types import LEAD, RULE_SET, QualificationType, RuleSetType, RuleVersionType
from handoff.models import RuleSet, RuleVersion
from handoff.qualification import RequirementsMissing, handoff_to_sql
from pipeline.models import Lead
from tenants.errors import PermissionDenied
from tenants.graphql.base import given, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.errors import mutation_error
from tenants.graphql.operations import MutationPayload, mutation
from tenants.models import Membership
from tenants.principal import PrincipalKind
from tenants.scopes import Scope


@strawberry.input(name="CreateHandoffRuleSetInput")
class CreateRuleSetInput:
    name: str
    description: str = ""


@strawberry.input(
    name="HandoffRuleVersionInput",
    description="A draft's parts (JSON, schemas in docs/handoff.md); on update only the parts "
    "sent change.",
)
class RuleVersionPartsInput:
    mql_conditions: JSON | None = strawberry.UNSET
    sql_requirements: JSON | None = strawberry.UNSET
    sla: JSON | None = strawberry.UNSET
    return_rules: JSON | None = strawberry.UNSET
    routing: JSON | None = strawberry.UNSET


@strawberry.type(name="HandoffRuleSetPayload")
class RuleSetPayload(MutationPayload):
    rule_set: RuleSetType | None = None


@strawberry.type(name="HandoffRuleVersionPayload")
class RuleVersionPayload(MutationPayload):
    version: RuleVersionType | None = None


@strawberry.type(name="HandoffToSqlPayload")
class HandoffToSqlPayload(MutationPayload):
    qualification: QualificationType | None = None
    missing: list[str] = strawberry.field(
        default_factory=list,
        description="Every requirement not met (`activity:connectedCall`, `field:budget`).",
    )


_PARTS = ("mql_conditions", "sql_requirements", "sla", "return_rules", "routing")


def _parts(parts: RuleVersionPartsInput | None) -> dict[str, Any]:
    if parts is None:
        return {}
    # A part sent as null is cleared to {} (nothing required, nothing configured).
    return {
        name: {} if getattr(parts, name) is None else getattr(parts, name)
        for name in _PARTS
        if given(getattr(parts, name))
    }


def _actor(info: Info) -> tuple[Membership | None, str]:
    principal = info.context.principal
    if principal.kind == PrincipalKind.USER and principal.membership is not None:
        member = principal.membership
        return member, member.display_name or principal.user.get_username()
    if principal.kind == PrincipalKind.TOKEN and principal.token is not None:
        return None, f"token {principal.token.name}"
    return None, ""


def _version_payload(version: RuleVersion) -> RuleVersionPayload:
    return RuleVersionPayload(version=RuleVersionType.of(with_approvals(version)))


@strawberry.type
class HandoffMutation:
    @mutation(scope=Scope.HANDOFF_WRITE, description="Add a handoff rule set (handoff:write).")
    def handoff_rule_set_create(self, info: Info, input: CreateRuleSetInput) -> RuleSetPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        rule_set = services.rule_set_create(
            tenant=tenant,
            name=input.name,
            description=input.description,
            actor=actor,
            actor_label=label,
        )
        return RuleSetPayload(rule_set=RuleSetType.of(rule_set, []))

    @mutation(
        scope=Scope.HANDOFF_WRITE, description="Add a draft version to a rule set (handoff:write)."
    )
    def rule_version_create(
        self, info: Info, rule_set_id: relay.GlobalID, parts: RuleVersionPartsInput | None = None
    ) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        rule_set = resolve_global_id(
            info, rule_set_id, model=RuleSet, type_name=RULE_SET, what="Rule set",
            field="ruleSetId",
        )  # fmt: skip
        actor, label = _actor(info)
        version = services.rule_version_create(
            tenant=tenant, rule_set=rule_set, parts=_parts(parts), actor=actor,
            actor_label=label,
        )  # fmt: skip
        return _version_payload(version)

    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description="Change a draft's parts (handoff:write); an approved, active or retired "
        "version is refused (CONFLICT): copy it. A change withdraws the draft's approvals.",
    )
    def rule_version_update(
        self, info: Info, id: relay.GlobalID, parts: RuleVersionPartsInput
    ) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        version = version_of(info, id)
        actor, label = _actor(info)
        version = services.rule_version_update(
            tenant=tenant, version=version, parts=_parts(parts), actor=actor,
            actor_label=label,
        )  # fmt: skip
        return _version_payload(version)

    @mutation(
        scope=Scope.HANDOFF_WRITE, description="Copy a version into a new draft (handoff:write)."
    )
    def rule_version_copy(self, info: Info, id: relay.GlobalID) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        version = services.rule_version_copy(
            tenant=tenant, version=version_of(info, id), actor=actor, actor_label=label
        )
        return _version_payload(version)

    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description="Approve a draft for your side (handoff:write): a marketing member for "
        "marketing, a field_sales or manager member for sales. Both sides: approved.",
    )
    def rule_version_approve(self, info: Info, id: relay.GlobalID) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        actor, _ = _actor(info)
        if actor is None:
            raise PermissionDenied("Only a member of the workspace can approve a version.")
        version = services.rule_version_approve(
            tenant=tenant, version=version_of(info, id), member=actor
        )
        return _version_payload(version)

    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description="Activate an approved version (handoff:write); the active one is retired.",
    )
    def rule_version_activate(self, info: Info, id: relay.GlobalID) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        version = services.rule_version_activate(
            tenant=tenant, version=version_of(info, id), actor=actor, actor_label=label
        )
        return _version_payload(version)

    @mutation(scope=Scope.HANDOFF_WRITE, description="Retire a version for good (handoff:write).")
    def rule_version_retire(self, info: Info, id: relay.GlobalID) -> RuleVersionPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        version = services.rule_version_retire(
            tenant=tenant, version=version_of(info, id), actor=actor, actor_label=label
        )
        return _version_payload(version)

    @mutation(
        scope=Scope.HANDOFF_WRITE,
        description="Hand a lead over to field sales (sql) under the active version's "
        "requirements (handoff:write). `info` holds the qualification fields sent with it "
        "(kept in the lead's attributes). Refused with `missing` listing every requirement "
        "not met; nothing changes then.",
    )
    def handoff_to_sql(
        self, info: Info, lead_id: relay.GlobalID, fields: JSON | None = None
    ) -> HandoffToSqlPayload:
        tenant = info.context.require_tenant()
        lead = resolve_global_id(info, lead_id, model=Lead, type_name=LEAD, field="leadId")
        actor, label = _actor(info)
        try:
            qualification = handoff_to_sql(
                tenant=tenant, lead=lead, actor=actor, info=fields or {}, actor_label=label
            )
        except RequirementsMissing as refused:
            return HandoffToSqlPayload(missing=refused.missing, errors=[mutation_error(refused)])
        return HandoffToSqlPayload(qualification=QualificationType.of(qualification))
