"""Alert rules (create, update, delete with validation that names the field) and the alert
lifecycle: acknowledge, snooze, assign, comment; every action recorded as an event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.models import (
    RULE_GRAINS,
    Alert,
    AlertComment,
    AlertEvent,
    AlertKind,
    AlertRule,
    Channel,
    RuleScope,
)
from kpis.catalogue import Direction
from kpis.selectors import kpi_definition
from tenants.errors import ErrorCode, NotFound, ValidationFailed
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

# Inclusive bounds of a threshold, per kind (DESIGN and the issue: percentages, hours).
THRESHOLD_BOUNDS: dict[str, tuple[Decimal, Decimal | None]] = {
    AlertKind.BELOW_VALUE: (Decimal(0), Decimal(10) ** 19),
    AlertKind.BELOW_TARGET_PERCENT: (Decimal(0), Decimal(1000)),
    AlertKind.BEHIND_PACE: (Decimal(0), Decimal(1000)),  # % of the pro-rated target
    AlertKind.DROP_VS_PREVIOUS: (Decimal(0), Decimal(100)),
    AlertKind.SILENCE: (Decimal(1), Decimal(720)),
}
MAX_RECIPIENTS = 50
MAX_COOLDOWN_MINUTES = 7 * 24 * 60
MAX_NOTIFY_EVERY_HOURS = 30 * 24
RULE_FIELDS: tuple[str, ...] = (
    "name", "kpi_key", "scope_type", "scope_key", "grain", "kind", "threshold", "min_sample",
    "improvement_action", "recipient_member_ids", "recipient_roles", "notify_scope_owner",
    "notify_scope_manager", "channels", "cooldown_minutes", "notify_every_hours", "is_active",
)  # fmt: skip


def _choice(value: Any, allowed: Iterable[str], field: str) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ValidationFailed(f"Must be one of {', '.join(allowed)}.", field=field)


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValidationFailed("Must be a number.", field=field) from exc
    if not number.is_finite():
        raise ValidationFailed("Must be a number.", field=field)
    if number != number.quantize(Decimal("0.0001")):
        raise ValidationFailed("At most 4 decimals.", field=field)
    return number.quantize(Decimal("0.0001"))


def alert_rule_validate(*, tenant: Tenant, rule: AlertRule) -> None:
    """Check a rule before it is saved; ValidationFailed / NotFound name the field at fault.

    The same checks serve GraphQL, admin and the demo command. Must run in the tenant's
    context (the KPI, team and member look-ups are scoped to it).
    """
    if not rule.name.strip():
        raise ValidationFailed("A rule needs a name.", field="name")
    if len(rule.name) > 200:
        raise ValidationFailed("At most 200 characters.", field="name")
    _choice(rule.kind, AlertKind.values, "kind")
    _choice(rule.grain, RULE_GRAINS, "grain")
    _choice(rule.scope_type, RuleScope.values, "scope")
    kpi = None
    if rule.kind == AlertKind.SILENCE:
        if rule.kpi_key:
            raise ValidationFailed(
                "A silence rule watches activities and takes no KPI.", field="kpi"
            )
    else:
        if not rule.kpi_key:
            raise ValidationFailed("This kind of rule needs a KPI.", field="kpi")
        try:
            kpi = kpi_definition(tenant=tenant, key=rule.kpi_key, field="kpi")
        except NotFound as exc:
            raise NotFound(f"KPI {rule.kpi_key!r}", field="kpi") from exc
    threshold = _decimal(rule.threshold, "threshold")
    low, high = THRESHOLD_BOUNDS[rule.kind]
    if threshold < low or (high is not None and threshold > high):
        raise ValidationFailed(
            f"For {rule.kind} the threshold must be {low} to {high}.", field="threshold"
        )
    if rule.kind == AlertKind.SILENCE and threshold != threshold.to_integral_value():
        raise ValidationFailed("Silence is counted in whole working hours.", field="threshold")
    rule.threshold = threshold
    if kpi is not None:
        if rule.kind == AlertKind.BEHIND_PACE and kpi.is_rate:
            raise ValidationFailed(
                "Pace pro-rates a count over working days: choose a count or money KPI.",
                field="kind",
            )
        if rule.kind in (AlertKind.BEHIND_PACE, AlertKind.DROP_VS_PREVIOUS) and (
            kpi.direction == Direction.LOWER_IS_BETTER
        ):
            raise ValidationFailed(
                f"{rule.kind} watches a KPI that should rise; {kpi.key} is lower-is-better.",
                field="kind",
            )
    if rule.min_sample is not None:
        if kpi is None or not kpi.is_rate:
            raise ValidationFailed(
                "A minimum sample applies to rate KPIs only (on their denominator).",
                field="minSample",
            )
        rule.min_sample = _decimal(rule.min_sample, "minSample")
        if rule.min_sample < 0:
            raise ValidationFailed("The minimum sample cannot be negative.", field="minSample")
    _validate_scope(rule)
    if not rule.improvement_action.strip():
        raise ValidationFailed(
            "Name the improvement action (改善アクション) the recipients should take.",
            field="improvementAction",
        )
    if len(rule.improvement_action) > 2000:
        raise ValidationFailed("At most 2000 characters.", field="improvementAction")
    _validate_recipients(rule)
    if not isinstance(rule.channels, list) or not rule.channels:
        raise ValidationFailed("Choose at least one channel.", field="channels")
    for channel in rule.channels:
        _choice(channel, Channel.values, "channels")
    rule.channels = sorted(set(rule.channels))
    if not 0 <= int(rule.cooldown_minutes) <= MAX_COOLDOWN_MINUTES:
        raise ValidationFailed(
            f"The cooldown is 0 to {MAX_COOLDOWN_MINUTES} minutes.", field="cooldownMinutes"
        )
    if not 1 <= int(rule.notify_every_hours) <= MAX_NOTIFY_EVERY_HOURS:
        raise ValidationFailed(
            f"Notify at most every 1 to {MAX_NOTIFY_EVERY_HOURS} hours.", field="notifyEveryHours"
        )


def _validate_scope(rule: AlertRule) -> None:
    kind, key = rule.scope_type, rule.scope_key or ""
    if kind in (RuleScope.TENANT, RuleScope.EVERY_REP, RuleScope.EVERY_TEAM):
        if key:
            raise ValidationFailed(f"The {kind} scope takes no id.", field="scope")
    elif kind == RuleScope.SOURCE:
        if len(key) > 50:
            raise ValidationFailed("A source has at most 50 characters.", field="scope")
    elif kind == RuleScope.TEAM:
        if not key.isdigit() or not Team.objects.filter(pk=int(key)).exists():
            raise NotFound("Team", field="scope")
    elif kind == RuleScope.REP and (
        not key.isdigit() or not Membership.objects.filter(pk=int(key)).exists()
    ):
        raise NotFound("Member", field="scope")
    rule.scope_key = key


def _validate_recipients(rule: AlertRule) -> None:
    ids = rule.recipient_member_ids
    if not isinstance(ids, list) or not all(isinstance(pk, int) for pk in ids):
        raise ValidationFailed("A list of member ids.", field="recipientMemberIds")
    if len(ids) > MAX_RECIPIENTS:
        raise ValidationFailed(f"At most {MAX_RECIPIENTS} members.", field="recipientMemberIds")
    ids = sorted(set(ids))
    if ids and Membership.objects.filter(pk__in=ids).count() != len(ids):
        raise NotFound("Member", field="recipientMemberIds")
    rule.recipient_member_ids = ids
    roles = rule.recipient_roles
    if not isinstance(roles, list):
        raise ValidationFailed("A list of roles.", field="recipientRoles")
    for role in roles:
        _choice(role, [r.value for r in Role], "recipientRoles")
    rule.recipient_roles = sorted(set(roles))
    if not (ids or rule.recipient_roles or rule.notify_scope_owner or rule.notify_scope_manager):
        raise ValidationFailed(
            "Name at least one recipient: members, roles, the scope's rep or its manager.",
            field="recipientMemberIds",
        )


def _save(rule: AlertRule) -> AlertRule:
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as exc:
        raise ValidationFailed(
            f"A rule named {rule.name!r} exists already.", code=ErrorCode.CONFLICT, field="name"
        ) from exc
    return rule


def alert_rule_create(*, tenant: Tenant, created_by_label: str = "", **fields: Any) -> AlertRule:
    """Add a rule (fields of RULE_FIELDS); it is judged from the next evaluation on."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown rule fields {sorted(unknown)}")
    rule = AlertRule(tenant=tenant, created_by_label=created_by_label[:150], **fields)
    alert_rule_validate(tenant=tenant, rule=rule)
    return _save(rule)


def alert_rule_update(*, tenant: Tenant, rule: AlertRule, **changes: Any) -> AlertRule:
    """Change the fields sent; the rule's alerts follow at the next evaluation."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"Unknown rule fields {sorted(unknown)}")
    locked = AlertRule.objects.select_for_update().filter(pk=rule.pk).first()
    if locked is None:
        raise NotFound("Alert rule", field="id")
    for name, value in changes.items():
        setattr(locked, name, value)
    alert_rule_validate(tenant=tenant, rule=locked)
    return _save(locked)


def alert_rule_delete(*, tenant: Tenant, rule: AlertRule) -> None:
    """Delete a rule with its alerts and their history."""
    deleted, _ = AlertRule.objects.filter(pk=rule.pk).delete()
    if not deleted:
        raise NotFound("Alert rule", field="id")


def _locked(alert: Alert) -> Alert:
    locked = Alert.objects.select_for_update().filter(pk=alert.pk).first()
    if locked is None:
        raise NotFound("Alert", field="id")
    return locked


def _record(
    alert: Alert, kind: str, actor: Membership | None, actor_label: str, data: dict[str, Any]
) -> AlertEvent:
    return AlertEvent.objects.create(
        tenant_id=alert.tenant_id,
        alert=alert,
        kind=kind,
        actor=actor,
        actor_label=actor_label[:150],
        at=timezone.now(),
        data=data,
    )


def alert_acknowledge(
    *, tenant: Tenant, alert: Alert, actor: Membership | None, actor_label: str
) -> Alert:
    """Someone is on it: no more notifications until the alert fires again."""
    alert = _locked(alert)
    if alert.state != Alert.State.FIRING:
        raise ValidationFailed(
            "Only a firing alert can be acknowledged.", code=ErrorCode.INVALID_TRANSITION
        )
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        _record(alert, AlertEvent.Kind.ACKNOWLEDGED, actor, actor_label, {})
    return alert


def alert_snooze(
    *,
    tenant: Tenant,
    alert: Alert,
    until: datetime,
    actor: Membership | None,
    actor_label: str,
) -> Alert:
    """Keep judging the alert but notify no one about it until `until`."""
    if timezone.is_naive(until):
        raise ValidationFailed("Give a time with its offset.", field="until")
    now = timezone.now()
    if until <= now:
        raise ValidationFailed("Snooze until a time in the future.", field="until")
    if until > now + timezone.timedelta(days=90):
        raise ValidationFailed("Snooze for 90 days at most.", field="until")
    alert = _locked(alert)
    alert.snoozed_until = until
    alert.save(update_fields=["snoozed_until"])
    _record(alert, AlertEvent.Kind.SNOOZED, actor, actor_label, {"until": until.isoformat()})
    return alert


def alert_assign(
    *,
    tenant: Tenant,
    alert: Alert,
    assignee: Membership | None,
    actor: Membership | None,
    actor_label: str,
) -> Alert:
    """Give the alert to a member of the workspace (None: unassign)."""
    if assignee is not None and not assignee.is_active:
        raise ValidationFailed("This member is inactive.", field="memberId")
    alert = _locked(alert)
    alert.assignee = assignee
    alert.save(update_fields=["assignee"])
    _record(
        alert,
        AlertEvent.Kind.ASSIGNED,
        actor,
        actor_label,
        {"assignee": None if assignee is None else assignee.pk},
    )
    return alert


def alert_comment(
    *, tenant: Tenant, alert: Alert, text: str, actor: Membership | None, actor_label: str
) -> AlertComment:
    """A note on the alert, kept with its history."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("A comment needs text.", field="text")
    if len(text) > 4000 or "\x00" in text:
        raise ValidationFailed("At most 4000 characters, no NUL.", field="text")
    alert = _locked(alert)
    comment = AlertComment.objects.create(
        tenant_id=alert.tenant_id,
        alert=alert,
        author=actor,
        author_label=actor_label[:150],
        text=text,
    )
    _record(alert, AlertEvent.Kind.COMMENTED, actor, actor_label, {"comment": comment.pk})
    return comment
