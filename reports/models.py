"""Dashboards (stored widget layouts) and the reports generated per period."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.timezone import now

from tenants.models import Membership, TenantOwnedModel
from tenants.scopes import Role


def owner_deleted(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    """When a member is deleted, their personal dashboards go with them; the shared ones
    they created stay, without an owner."""
    personal = [d for d in sub_objs if not d.is_shared]
    shared = [d for d in sub_objs if d.is_shared]
    if personal:
        models.CASCADE(collector, field, personal, using)
    if shared:
        collector.add_field_update(field, None, shared)


class Dashboard(TenantOwnedModel):
    """A stored layout of widgets: shared with the workspace, or personal to its owner."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=owner_deleted,
        related_name="+",
        help_text="Who created it; a personal dashboard is seen by its owner only.",
    )
    is_shared = models.BooleanField(default=True)
    default_for_role = models.CharField(
        max_length=20,
        blank=True,
        choices=[(r.value, r.value) for r in Role],
        help_text="Shown first to members of this role (one per role; shared only).",
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "default_for_role"],
                condition=~models.Q(default_for_role=""),
                name="dashboard_one_default_per_role",
            ),
            models.CheckConstraint(
                condition=models.Q(is_shared=True) | models.Q(owner__isnull=False),
                name="dashboard_personal_has_owner",
            ),
            models.CheckConstraint(
                condition=models.Q(default_for_role="") | models.Q(is_shared=True),
                name="dashboard_role_default_is_shared",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "owner"], name="dashboard_tenant_owner")]

    def __str__(self) -> str:
        return self.name


class WidgetKind(models.TextChoices):
    KPI_TREE = "kpi_tree", "KPI tree"
    KPI_TILES = "kpi_tiles", "KPI tiles"
    SERIES = "series", "Series chart"
    FUNNEL = "funnel", "Funnel"
    LEADERBOARD = "leaderboard", "Leaderboard"
    ALERTS = "alerts", "Open alerts"


class DashboardWidget(TenantOwnedModel):
    """One widget of a dashboard: its kind, its place and its validated configuration."""

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="widgets")
    kind = models.CharField(max_length=20, choices=WidgetKind.choices)
    title = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["order", "id"]
        indexes = [
            models.Index(fields=["tenant", "dashboard", "order"], name="widget_tenant_dash_order")
        ]

    def __str__(self) -> str:
        return self.title or self.kind


class ReportKind(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    EXECUTIVE = "executive", "Executive (経営層向け)"


class Report(TenantOwnedModel):
    """A report of one closed period and scope, generated once: its data and its HTML."""

    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    grain = models.CharField(max_length=8)
    period_label = models.CharField(max_length=12)
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    scope_type = models.CharField(max_length=10)
    scope_key = models.CharField(max_length=50, blank=True)
    language = models.CharField(max_length=2)
    generated_at = models.DateTimeField(default=now)
    regenerated_count = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict)
    html = models.TextField()

    class Meta:
        ordering = ["-period_start", "kind", "scope_type", "scope_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "period_start", "scope_type", "scope_key"],
                name="report_once_per_period_and_scope",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "kind", "scope_type", "scope_key", "-period_start"],
                name="report_tenant_kind_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_label} {self.scope_type}:{self.scope_key}"


class ChecklistDecision(TenantOwnedModel):
    """A KPI-design checklist item that needs a human decision, as recorded (not guessed)."""

    class Item(models.TextChoices):
        REVIEW_MEETINGS = "review_meetings", "Weekly/monthly review meetings (振り返りミーティング)"
        MQL_SQL_AGREED = "mql_sql_agreed", "MQL/SQL definitions agreed (MQL・SQLの定義の合意)"
        HANDOFF_RULES = "handoff_rules", "Lead handoff rules documented (リード引き渡しルール)"
        REVIEW_CYCLE = "review_cycle", "KPI review cycle (KPI見直しのサイクル)"

    item = models.CharField(max_length=30, choices=Item.choices)
    value = models.TextField(
        max_length=1000, help_text="What was decided: cadence, where it is documented, by whom."
    )
    decided_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "item"], name="checklist_decision_once")
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.value[:40]}"


class Department(models.TextChoices):
    MARKETING = "marketing", "Marketing (マーケティング)"
    INSIDE_SALES = "inside_sales", "Inside sales (インサイドセールス)"
    FIELD_SALES = "field_sales", "Field sales (フィールドセールス)"


class SharedKpi(TenantOwnedModel):
    """A KPI the departments share (共通KPI): one definition and one number for all of them."""

    kpi_key = models.CharField(max_length=50)
    owner_department = models.CharField(
        max_length=20, choices=Department.choices, help_text="The department accountable for it."
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["kpi_key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kpi_key"], name="shared_kpi_once")
        ]

    def __str__(self) -> str:
        return self.kpi_key


class ReportSubscription(TenantOwnedModel):
    """A member's choice about one kind of report. Without a row the role's default holds
    (every member whose role has a view of the report is subscribed); a row records an
    opt-out, or an opt-in again."""

    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="report_subscriptions"
    )
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    subscribed = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["member_id", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "member", "kind"], name="report_subscription_once"
            )
        ]

    def __str__(self) -> str:
        state = "subscribed" if self.subscribed else "opted out"
        return f"{self.member_id} {self.kind}: {state}"
