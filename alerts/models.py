"""Alert rules (アラート設定), the alerts they raise per scope and period, and their history."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from kpis.periods import Grain
from tenants.models import Membership, TenantOwnedModel


class AlertKind(models.TextChoices):
    BELOW_VALUE = "below_value", "Below a value"
    BELOW_TARGET_PERCENT = "below_target_percent", "Below a percentage of target"
    BEHIND_PACE = "behind_pace", "Behind pace"
    DROP_VS_PREVIOUS = "drop_vs_previous", "Drop against the previous period"
    SILENCE = "silence", "Silence (no activity)"


class RuleScope(models.TextChoices):
    """One scope of kpis.scopes.ScopeType, or every rep / every team of the tenant."""

    TENANT = "tenant", "Tenant"
    TEAM = "team", "Team"
    REP = "rep", "Rep"
    SOURCE = "source", "Source (channel)"
    EVERY_REP = "every_rep", "Every rep"
    EVERY_TEAM = "every_team", "Every team"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


# Grains a rule can watch: a day is too short to judge and a fiscal year too long to act on.
RULE_GRAINS: tuple[str, ...] = (Grain.WEEK, Grain.MONTH, Grain.QUARTER)


class AlertRule(TenantOwnedModel):
    """A condition on a KPI for a scope (or every rep / team) and grain, with its action."""

    name = models.CharField(max_length=200)
    kpi_key = models.CharField(max_length=50, blank=True, help_text="Empty for silence rules.")
    scope_type = models.CharField(max_length=10, choices=RuleScope.choices)
    scope_key = models.CharField(
        max_length=50, blank=True, help_text="Team or Membership pk, or the lead source."
    )
    grain = models.CharField(max_length=8, choices=[(g, Grain(g).label) for g in RULE_GRAINS])
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    threshold = models.DecimalField(
        max_digits=24,
        decimal_places=4,
        help_text="A value (below_value), a percentage of target (0-1000), a drop in % "
        "(0-100) or working hours of silence (1-720).",
    )
    min_sample = models.DecimalField(
        max_digits=24,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Rate KPIs only: the denominator must reach this before the rule judges.",
    )
    improvement_action = models.TextField(max_length=2000, help_text="改善アクション")
    recipient_member_ids = models.JSONField(default=list, blank=True)
    recipient_roles = models.JSONField(default=list, blank=True)
    notify_scope_owner = models.BooleanField(default=False, help_text="The rep of a rep scope.")
    notify_scope_manager = models.BooleanField(
        default=False, help_text="The managers of the scope's team (every manager otherwise)."
    )
    channels = models.JSONField(default=list, blank=True)
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="A resolved alert does not fire again within this time."
    )
    notify_every_hours = models.PositiveIntegerField(
        default=24, help_text="At most one notification per alert within this time."
    )
    is_active = models.BooleanField(default=True)
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="alertrule_unique_name")
        ]
        indexes = [models.Index(fields=["tenant", "is_active"], name="alertrule_tenant_active")]

    def __str__(self) -> str:
        return self.name


class Alert(TenantOwnedModel):
    """One rule's alert for one scope and period: firing or resolved, with its explanation."""

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    scope_type = models.CharField(max_length=8)
    scope_key = models.CharField(max_length=50, blank=True)
    grain = models.CharField(max_length=8, choices=Grain.choices)
    period_label = models.CharField(max_length=12)
    period_start = models.DateField()
    period_end = models.DateField()
    state = models.CharField(max_length=8, choices=State.choices)
    value = models.DecimalField(max_digits=40, decimal_places=12, null=True, blank=True)
    threshold = models.DecimalField(max_digits=40, decimal_places=12, null=True, blank=True)
    sample = models.DecimalField(max_digits=40, decimal_places=12, null=True, blank=True)
    explanation = models.JSONField(default=dict, blank=True)
    first_fired_at = models.DateTimeField()
    last_fired_at = models.DateTimeField()
    last_evaluated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_fired_at", "-id"]
        constraints = [
            # TRICKY: the one guarantee that two evaluations racing never raise two alerts
            # for one rule, scope and period; evaluation upserts against it.
            models.UniqueConstraint(
                fields=["tenant", "rule", "scope_type", "scope_key", "grain", "period_start"],
                name="alert_unique_rule_scope_period",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "last_fired_at"], name="alert_tenant_state")
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.scope_type}:{self.scope_key} {self.period_label}"


class AlertEvent(TenantOwnedModel):
    """One entry of an alert's history."""

    class Kind(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"
        REFIRED = "refired", "Fired again"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        SNOOZED = "snoozed", "Snoozed"
        ASSIGNED = "assigned", "Assigned"
        COMMENTED = "commented", "Commented"
        NOTIFIED = "notified", "Notification due"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="'system' for evaluation.")
    at = models.DateTimeField(default=now)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["tenant", "alert", "at"], name="alertevent_tenant_alert")]

    def __str__(self) -> str:
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M}"


class AlertComment(TenantOwnedModel):
    """A note a member left on an alert."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_label = models.CharField(max_length=150, blank=True)
    text = models.TextField(max_length=4000)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "alert", "created_at"], name="alertcomment_tenant_alert")
        ]

    def __str__(self) -> str:
        return self.text[:50]
