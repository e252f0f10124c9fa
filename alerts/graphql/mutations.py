"""GraphQL mutations of alerts: rules (kpis:write) and the alert lifecycle (kpis:read)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import relay

from alerts import services
from alerts.graphql.types import (
    ALERT,
    MEMBER,
    RULE,
    TEAM,
    AlertChannelEnum,
    AlertCommentType,
    AlertKindEnum,
    AlertRuleScopeTypeEnum,
    AlertRuleType,
    AlertType,
)
from alerts.models import Alert, AlertKind, AlertRule, Channel
from kpis.graphql.inputs import GrainEnum
from tenants.errors import ValidationFailed, camel_case
from tenants.graphql.base import given, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.models import Membership, Team
from tenants.principal import PrincipalKind
from tenants.scopes import Scope


@strawberry.input(
    name="AlertRuleScopeInput",
    description="TENANT, EVERY_REP and EVERY_TEAM take nothing; TEAM a Team id; REP a "
    'Membership id; SOURCE the lead source in `source` ("" = no source).',
)
class AlertRuleScopeInput:
    type: AlertRuleScopeTypeEnum = AlertRuleScopeTypeEnum.TENANT
    id: relay.GlobalID | None = None
    source: str | None = None


@strawberry.input(name="CreateAlertRuleInput")
class CreateAlertRuleInput:
    name: str
    kind: AlertKindEnum  # type: ignore[valid-type]
    threshold: Decimal = strawberry.field(
        description="below_value: the value (>= 0); below_target_percent and behind_pace: % "
        "of the (pro-rated) target, 0 to 1000 (100 = on pace); drop_vs_previous: % drop, "
        "0 to 100; silence: working hours, 1 to 720."
    )
    improvement_action: str = strawberry.field(description="改善アクション: what to do.")
    kpi: str | None = strawberry.field(default=None, description="A KPI key; none for silence.")
    scope: AlertRuleScopeInput | None = None
    grain: GrainEnum = strawberry.field(
        default=GrainEnum.MONTH, description="WEEK, MONTH or QUARTER."
    )
    min_sample: Decimal | None = strawberry.field(
        default=None, description="Rate KPIs: judge only once the denominator reaches it."
    )
    recipient_member_ids: list[relay.GlobalID] = strawberry.field(default_factory=list)
    recipient_roles: list[str] = strawberry.field(default_factory=list)
    notify_scope_owner: bool = False
    notify_scope_manager: bool = False
    channels: list[AlertChannelEnum] = strawberry.field(  # type: ignore[valid-type]
        default_factory=lambda: [Channel.IN_APP]
    )
    cooldown_minutes: int = 60
    notify_every_hours: int = 24
    is_active: bool = True


@strawberry.input(name="UpdateAlertRuleInput", description="Only the fields sent are changed.")
class UpdateAlertRuleInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    kind: AlertKindEnum | None = strawberry.UNSET  # type: ignore[valid-type]
    threshold: Decimal | None = strawberry.UNSET
    improvement_action: str | None = strawberry.UNSET
    kpi: str | None = strawberry.UNSET
    scope: AlertRuleScopeInput | None = strawberry.UNSET
    grain: GrainEnum | None = strawberry.UNSET
    min_sample: Decimal | None = strawberry.UNSET
    recipient_member_ids: list[relay.GlobalID] | None = strawberry.UNSET
    recipient_roles: list[str] | None = strawberry.UNSET
    notify_scope_owner: bool | None = strawberry.UNSET
    notify_scope_manager: bool | None = strawberry.UNSET
    channels: list[AlertChannelEnum] | None = strawberry.UNSET  # type: ignore[valid-type]
    cooldown_minutes: int | None = strawberry.UNSET
    notify_every_hours: int | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


@strawberry.type(name="AlertRulePayload")
class AlertRulePayload(MutationPayload):
    rule: AlertRuleType | None = None


@strawberry.type(name="DeleteAlertRulePayload")
class DeleteAlertRulePayload(MutationPayload):
    deleted_id: strawberry.ID | None = None


@strawberry.type(name="AlertPayload")
class AlertPayload(MutationPayload):
    alert: AlertType | None = None
    comment: AlertCommentType | None = None


def _scope(info: Info, scope: AlertRuleScopeInput | None) -> tuple[str, str]:
    if scope is None:
        return "tenant", ""
    kind = scope.type.value
    if kind in ("team", "rep"):
        if scope.id is None or scope.source is not None:
            raise ValidationFailed(f"A {kind} scope needs an `id`.", field="scope")
        if kind == "team":
            team = resolve_global_id(info, scope.id, model=Team, type_name=TEAM, field="scope")
            return kind, str(team.pk)
        member = resolve_global_id(
            info, scope.id, model=Membership, type_name=MEMBER, what="Member", field="scope"
        )
        return kind, str(member.pk)
    if scope.id is not None:
        raise ValidationFailed(f"The {kind} scope takes no id.", field="scope")
    if kind == "source":
        if scope.source is None:
            raise ValidationFailed("A source scope needs `source`.", field="scope")
        return kind, scope.source
    if scope.source is not None:
        raise ValidationFailed(f"The {kind} scope takes no source.", field="scope")
    return kind, ""


def _members(info: Info, ids: list[relay.GlobalID]) -> list[int]:
    if len(ids) > services.MAX_RECIPIENTS:
        raise ValidationFailed(
            f"At most {services.MAX_RECIPIENTS} members.", field="recipientMemberIds"
        )
    return [
        resolve_global_id(
            info,
            global_id,
            model=Membership,
            type_name=MEMBER,
            what="Member",
            field="recipientMemberIds",
        ).pk
        for global_id in ids
    ]


_PLAIN = (
    "name", "threshold", "improvement_action", "min_sample", "recipient_roles",
    "notify_scope_owner", "notify_scope_manager", "cooldown_minutes", "notify_every_hours",
    "is_active",
)  # fmt: skip
_NULLABLE = {"min_sample", "kpi"}


def _fields(info: Info, input: Any, *, partial: bool) -> dict[str, Any]:
    """The service's fields from an input; for an update only those sent."""
    fields: dict[str, Any] = {}

    def sent(name: str) -> bool:
        if not partial:
            return True
        value = getattr(input, name)
        if not given(value):
            return False
        if value is None and name not in _NULLABLE:
            raise ValidationFailed("This field cannot be null.", field=camel_case(name))
        return True

    for name in _PLAIN:
        if sent(name):
            fields[name] = getattr(input, name)
    if sent("kind"):
        fields["kind"] = AlertKind(input.kind).value
    if sent("kpi"):
        fields["kpi_key"] = input.kpi or ""
    if sent("grain"):
        fields["grain"] = input.grain.value
    if sent("channels"):
        fields["channels"] = [Channel(channel).value for channel in input.channels]
    if sent("recipient_member_ids"):
        fields["recipient_member_ids"] = _members(info, input.recipient_member_ids)
    if not partial or given(input.scope):
        fields["scope_type"], fields["scope_key"] = _scope(info, input.scope)
    return fields


def _actor(info: Info) -> tuple[Membership | None, str]:
    principal = info.context.principal
    if principal.kind == PrincipalKind.USER and principal.membership is not None:
        member = principal.membership
        return member, member.display_name or principal.user.get_username()
    if principal.kind == PrincipalKind.TOKEN and principal.token is not None:
        return None, f"token {principal.token.name}"
    return None, ""


def _rule(info: Info, global_id: relay.GlobalID) -> AlertRule:
    return resolve_global_id(
        info, global_id, model=AlertRule, type_name=RULE, what="Alert rule", field="id"
    )


def _alert(info: Info, global_id: relay.GlobalID) -> Alert:
    return resolve_global_id(info, global_id, model=Alert, type_name=ALERT, field="id")


def _alert_payload(alert: Alert, **more: Any) -> AlertPayload:
    fresh = Alert.objects.select_related("rule").get(pk=alert.pk)
    return AlertPayload(alert=AlertType.of(fresh), **more)


@strawberry.type
class AlertMutation:
    @mutation(
        scope=Scope.KPIS_WRITE, description="Add an alert rule (kpis:write: managers and admins)."
    )
    def create_alert_rule(self, info: Info, input: CreateAlertRuleInput) -> AlertRulePayload:
        tenant = info.context.require_tenant()
        _, label = _actor(info)
        rule = services.alert_rule_create(
            tenant=tenant, created_by_label=label, **_fields(info, input, partial=False)
        )
        return AlertRulePayload(rule=AlertRuleType.of(rule))

    @mutation(scope=Scope.KPIS_WRITE, description="Change an alert rule (kpis:write).")
    def update_alert_rule(self, info: Info, input: UpdateAlertRuleInput) -> AlertRulePayload:
        tenant = info.context.require_tenant()
        rule = _rule(info, input.id)
        rule = services.alert_rule_update(
            tenant=tenant, rule=rule, **_fields(info, input, partial=True)
        )
        return AlertRulePayload(rule=AlertRuleType.of(rule))

    @mutation(
        scope=Scope.KPIS_WRITE, description="Delete an alert rule with its alerts (kpis:write)."
    )
    def delete_alert_rule(self, info: Info, id: relay.GlobalID) -> DeleteAlertRulePayload:
        tenant = info.context.require_tenant()
        rule = _rule(info, id)
        services.alert_rule_delete(tenant=tenant, rule=rule)
        return DeleteAlertRulePayload(deleted_id=strawberry.ID(str(id)))

    @mutation(
        scope=Scope.KPIS_READ,
        description="Say someone is on it: no notification until it re-fires.",
    )
    def acknowledge_alert(self, info: Info, id: relay.GlobalID) -> AlertPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        alert = services.alert_acknowledge(
            tenant=tenant, alert=_alert(info, id), actor=actor, actor_label=label
        )
        return _alert_payload(alert)

    @mutation(
        scope=Scope.KPIS_READ, description="Keep judging the alert, notify no one until `until`."
    )
    def snooze_alert(self, info: Info, id: relay.GlobalID, until: datetime) -> AlertPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        alert = services.alert_snooze(
            tenant=tenant, alert=_alert(info, id), until=until, actor=actor, actor_label=label
        )
        return _alert_payload(alert)

    @mutation(scope=Scope.KPIS_READ, description="Give the alert to a member (null: nobody).")
    def assign_alert(
        self, info: Info, id: relay.GlobalID, member_id: relay.GlobalID | None
    ) -> AlertPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        alert = _alert(info, id)
        assignee = (
            None
            if member_id is None
            else resolve_global_id(
                info,
                member_id,
                model=Membership,
                type_name=MEMBER,
                what="Member",
                field="memberId",
            )
        )
        alert = services.alert_assign(
            tenant=tenant, alert=alert, assignee=assignee, actor=actor, actor_label=label
        )
        return _alert_payload(alert)

    @mutation(scope=Scope.KPIS_READ, description="Leave a comment on an alert.")
    def comment_on_alert(self, info: Info, id: relay.GlobalID, text: str) -> AlertPayload:
        tenant = info.context.require_tenant()
        actor, label = _actor(info)
        alert = _alert(info, id)
        comment = services.alert_comment(
            tenant=tenant, alert=alert, text=text, actor=actor, actor_label=label
        )
        return _alert_payload(alert, comment=AlertCommentType.of(comment))
