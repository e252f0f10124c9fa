"""GraphQL types of alert rules, alerts, their explanation, history and comments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from alerts import explaining
from alerts.models import Alert, AlertComment, AlertEvent, AlertKind, AlertRule, Channel, RuleScope
from kpis.graphql.inputs import GrainEnum
from tenants.errors import ValidationFailed
from tenants.graphql.context import Info

RULE, ALERT, MEMBER, TEAM = "AlertRule", "Alert", "Membership", "Team"

AlertKindEnum = strawberry.enum(AlertKind, name="AlertKind", description="What a rule watches.")
AlertChannelEnum = strawberry.enum(Channel, name="AlertChannel")
AlertEventKindEnum = strawberry.enum(AlertEvent.Kind, name="AlertEventKind")


@strawberry.enum(name="AlertState")
class AlertStateEnum(Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


@strawberry.enum(
    name="AlertRuleScopeType", description="One scope, or every rep / team of the workspace."
)
class AlertRuleScopeTypeEnum(Enum):
    TENANT = RuleScope.TENANT.value
    TEAM = RuleScope.TEAM.value
    REP = RuleScope.REP.value
    SOURCE = RuleScope.SOURCE.value
    EVERY_REP = RuleScope.EVERY_REP.value
    EVERY_TEAM = RuleScope.EVERY_TEAM.value


def gid(type_name: str, pk: Any) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


def _number(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@strawberry.type(name="AlertScope", description="Whom an alert or rule is about.")
class AlertScopeType:
    type: AlertRuleScopeTypeEnum
    id: strawberry.ID | None = strawberry.field(description="The Team or Membership id.")
    source: str | None

    @classmethod
    def of(cls, scope_type: str, key: str) -> AlertScopeType:
        return cls(
            type=AlertRuleScopeTypeEnum(scope_type),
            id=gid(TEAM if scope_type == "team" else MEMBER, key)
            if scope_type in ("team", "rep")
            else None,
            source=key if scope_type == "source" else None,
        )


@strawberry.type(
    name="AlertRule", description="アラート設定: a condition, whom it tells, and what to do."
)
class AlertRuleType:
    id: strawberry.ID
    name: str
    kpi: str | None = strawberry.field(description="The KPI key; null for silence rules.")
    scope: AlertScopeType
    grain: GrainEnum
    kind: AlertKindEnum  # type: ignore[valid-type]
    threshold: Decimal = strawberry.field(
        description="below_value: the value; below_target_percent and behind_pace: % of the "
        "(pro-rated) target; drop_vs_previous: % drop; silence: working hours."
    )
    min_sample: Decimal | None
    improvement_action: str
    recipient_member_ids: list[strawberry.ID]
    recipient_roles: list[str]
    notify_scope_owner: bool
    notify_scope_manager: bool
    channels: list[AlertChannelEnum]  # type: ignore[valid-type]
    cooldown_minutes: int
    notify_every_hours: int
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, rule: AlertRule) -> AlertRuleType:
        return cls(
            id=gid(RULE, rule.pk),
            name=rule.name,
            kpi=rule.kpi_key or None,
            scope=AlertScopeType.of(rule.scope_type, rule.scope_key),
            grain=GrainEnum(rule.grain),
            kind=AlertKind(rule.kind),
            threshold=rule.threshold,
            min_sample=rule.min_sample,
            improvement_action=rule.improvement_action,
            recipient_member_ids=[gid(MEMBER, pk) for pk in rule.recipient_member_ids],
            recipient_roles=list(rule.recipient_roles),
            notify_scope_owner=rule.notify_scope_owner,
            notify_scope_manager=rule.notify_scope_manager,
            channels=[Channel(channel) for channel in rule.channels],
            cooldown_minutes=rule.cooldown_minutes,
            notify_every_hours=rule.notify_every_hours,
            is_active=rule.is_active,
            created_at=rule.created_at,
        )


@strawberry.type(name="AlertDriver", description="A KPI-tree driver furthest short of plan.")
class AlertDriverType:
    kpi: str
    name: str
    actual: Decimal | None
    plan: Decimal | None = strawberry.field(description="Its target, else the tree's plan.")
    attainment: Decimal | None = strawberry.field(description="actual ÷ plan (a ratio).")


@strawberry.type(
    name="AlertExplanation",
    description="Why an alert fired: exact numbers (not rounded), the period so far and what "
    "to do.",
)
class AlertExplanationType:
    value: Decimal | None
    threshold: Decimal | None = strawberry.field(
        description="The bound compared with: x, p % of target, the pace, or prev x (1 - n %)."
    )
    sample: Decimal | None = strawberry.field(description="The rate's denominator.")
    min_sample: Decimal | None
    target: Decimal | None
    previous_value: Decimal | None
    working_days: int | None
    elapsed_working_days: int | None
    remaining_working_days: int | None
    needed_per_remaining_day: Decimal | None
    last_activity_at: datetime | None
    silent_working_hours: Decimal | None
    reason: str | None = strawberry.field(
        description="Why a resolved alert no longer holds when not by its numbers "
        "(min_sample_not_met, no_target, no_value, no_previous_value, no_longer_judged)."
    )
    drivers: list[AlertDriverType] | None
    improvement_action: str
    stored: strawberry.Private[dict[str, Any]]

    @strawberry.field(
        description="For pace alerts, what each remaining working day needs, in `language` "
        '(ja or en; default: the workspace\'s language): "10.1 more meetings set a day" / '
        '"商談設定数を1日あたりあと10.1". Written on read from the numbers.'
    )
    def summary(self, info: Info, language: str | None = None) -> str | None:
        tenant = info.context.tenant
        if language is None:
            language = tenant.language if tenant is not None else "ja"
        elif language not in explaining.LANGUAGES:
            raise ValidationFailed("Choose ja or en.", field="language")
        currency = tenant.currency if tenant is not None else ""
        return explaining.pace_summary(self.stored, language, currency=currency)

    @classmethod
    def of(cls, data: dict[str, Any]) -> AlertExplanationType:
        period = data.get("period") or {}
        drivers = data.get("drivers")
        last = data.get("lastActivityAt")
        return cls(
            value=_number(data.get("value")),
            threshold=_number(data.get("threshold")),
            sample=_number(data.get("sample")),
            min_sample=_number(data.get("minSample")),
            target=_number(data.get("target")),
            previous_value=_number(data.get("previousValue")),
            working_days=period.get("workingDays"),
            elapsed_working_days=period.get("elapsedWorkingDays"),
            remaining_working_days=data.get("remainingWorkingDays"),
            needed_per_remaining_day=_number(data.get("neededPerRemainingDay")),
            last_activity_at=None if last is None else datetime.fromisoformat(last),
            silent_working_hours=_number(data.get("silentWorkingHours")),
            reason=data.get("reason"),
            drivers=None
            if drivers is None
            else [
                AlertDriverType(
                    kpi=d["kpi"],
                    name=d["name"],
                    actual=_number(d.get("actual")),
                    plan=_number(d.get("plan")),
                    attainment=_number(d.get("attainment")),
                )
                for d in drivers
            ],
            improvement_action=data.get("improvementAction", ""),
            stored=data,
        )


@strawberry.type(name="AlertEvent", description="One entry of an alert's history.")
class AlertEventType:
    kind: AlertEventKindEnum  # type: ignore[valid-type]
    at: datetime
    actor: str = strawberry.field(description="The member or token, or 'system'.")
    actor_id: strawberry.ID | None

    @classmethod
    def of(cls, event: AlertEvent) -> AlertEventType:
        return cls(
            kind=AlertEvent.Kind(event.kind),
            at=event.at,
            actor=event.actor_label,
            actor_id=None if event.actor_id is None else gid(MEMBER, event.actor_id),
        )


@strawberry.type(name="AlertComment")
class AlertCommentType:
    text: str
    author: str
    author_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def of(cls, comment: AlertComment) -> AlertCommentType:
        return cls(
            text=comment.text,
            author=comment.author_label,
            author_id=None if comment.author_id is None else gid(MEMBER, comment.author_id),
            created_at=comment.created_at,
        )


@strawberry.type(name="Alert", description="A rule's alert for one scope and period.")
class AlertType:
    id: strawberry.ID
    rule: AlertRuleType
    scope: AlertScopeType
    grain: GrainEnum
    period: str
    period_start: date
    period_end: date = strawberry.field(description="The first day after the period.")
    state: AlertStateEnum
    explanation: AlertExplanationType
    first_fired_at: datetime
    last_fired_at: datetime
    last_evaluated_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by_id: strawberry.ID | None
    snoozed_until: datetime | None
    assignee_id: strawberry.ID | None
    last_notified_at: datetime | None
    events: list[AlertEventType] | None = strawberry.field(
        description="The history, oldest first (on `alert(id)` only; null in lists)."
    )
    comments: list[AlertCommentType] | None = strawberry.field(
        description="Comments, oldest first (on `alert(id)` only; null in lists)."
    )

    @classmethod
    def of(
        cls,
        alert: Alert,
        *,
        events: list[AlertEvent] | None = None,
        comments: list[AlertComment] | None = None,
    ) -> AlertType:
        def member(pk: int | None) -> strawberry.ID | None:
            return None if pk is None else gid(MEMBER, pk)

        return cls(
            id=gid(ALERT, alert.pk),
            rule=AlertRuleType.of(alert.rule),
            scope=AlertScopeType.of(alert.scope_type, alert.scope_key),
            grain=GrainEnum(alert.grain),
            period=alert.period_label,
            period_start=alert.period_start,
            period_end=alert.period_end,
            state=AlertStateEnum(alert.state),
            explanation=AlertExplanationType.of(alert.explanation),
            first_fired_at=alert.first_fired_at,
            last_fired_at=alert.last_fired_at,
            last_evaluated_at=alert.last_evaluated_at,
            resolved_at=alert.resolved_at,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by_id=member(alert.acknowledged_by_id),
            snoozed_until=alert.snoozed_until,
            assignee_id=member(alert.assignee_id),
            last_notified_at=alert.last_notified_at,
            events=None if events is None else [AlertEventType.of(e) for e in events],
            comments=None if comments is None else [AlertCommentType.of(c) for c in comments],
        )


@strawberry.type(name="AlertRulePage")
class AlertRulePage:
    total_count: int
    items: list[AlertRuleType]


@strawberry.type(name="AlertPage")
class AlertPage:
    total_count: int
    items: list[AlertType]
