"""MQL → SQL handoff rule sets, their agreed versions, approvals, audit trail and qualifications."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from pipeline.models import Lead, StageTransition
from tenants.models import Membership, Team, TenantOwnedModel


class RuleSet(TenantOwnedModel):
    """A named family of rule versions (引き渡しルール); one version across the tenant is active."""

    name = models.CharField(max_length=200, verbose_name=_("name"))
    description = models.TextField(max_length=2000, blank=True, verbose_name=_("description"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("handoff rule set")
        verbose_name_plural = _("handoff rule sets")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="handoff_ruleset_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    APPROVED = "approved", _("approved")
    ACTIVE = "active", _("active")
    RETIRED = "retired", _("retired")


class RuleVersion(TenantOwnedModel):
    """One numbered version of a rule set: its conditions, requirements, SLA, returns, routing."""

    rule_set = models.ForeignKey(
        RuleSet, on_delete=models.CASCADE, related_name="versions", verbose_name=_("rule set")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    status = models.CharField(
        max_length=10,
        choices=VersionStatus.choices,
        default=VersionStatus.DRAFT,
        verbose_name=_("status"),
    )
    mql_conditions = models.JSONField(default=dict, blank=True, verbose_name=_("MQL conditions"))
    sql_requirements = models.JSONField(
        default=dict, blank=True, verbose_name=_("SQL requirements")
    )
    sla = models.JSONField(default=dict, blank=True, verbose_name=_("SLA"))
    return_rules = models.JSONField(default=dict, blank=True, verbose_name=_("return rules"))
    routing = models.JSONField(default=dict, blank=True, verbose_name=_("routing"))
    created_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    approved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("approved at"))
    activated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("activated at"))
    retired_at = models.DateTimeField(null=True, blank=True, verbose_name=_("retired at"))

    class Meta:
        verbose_name = _("handoff rule version")
        verbose_name_plural = _("handoff rule versions")
        ordering = ["rule_set_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "rule_set", "number"], name="handoff_version_unique_number"
            ),
            # TRICKY: the database's guarantee that two activations racing never leave two
            # active versions in one tenant (activation also locks the tenant's versions).
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status="active"),
                name="handoff_version_one_active",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "activated_at"], name="handoff_version_activated"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_set_id} v{self.number} ({self.status})"


class ApprovalSide(models.TextChoices):
    MARKETING = "marketing", _("marketing")
    SALES = "sales", _("sales")


class Approval(TenantOwnedModel):
    """One side's agreement (合意) to a rule version, by a member of that side."""

    version = models.ForeignKey(
        RuleVersion, on_delete=models.CASCADE, related_name="approvals", verbose_name=_("version")
    )
    member = models.ForeignKey(
        Membership,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("member"),
    )
    side = models.CharField(max_length=10, choices=ApprovalSide.choices, verbose_name=_("side"))
    at = models.DateTimeField(default=now, verbose_name=_("at"))

    class Meta:
        verbose_name = _("handoff approval")
        verbose_name_plural = _("handoff approvals")
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "version", "side"], name="handoff_approval_unique_side"
            )
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.at:%Y-%m-%d %H:%M}"


class AuditEntry(TenantOwnedModel):
    """Who did what to which rule version or lead, and when (every handoff change is audited)."""

    actor = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text=_("'system' for evaluation."), verbose_name=_("actor")
    )
    action = models.CharField(max_length=50, verbose_name=_("action"))
    version = models.ForeignKey(
        RuleVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("version"),
    )
    lead = models.ForeignKey(
        Lead,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("lead"),
    )
    details = models.JSONField(default=dict, blank=True, verbose_name=_("details"))
    at = models.DateTimeField(default=now, verbose_name=_("at"))

    class Meta:
        verbose_name = _("handoff audit entry")
        verbose_name_plural = _("handoff audit entries")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "at"], name="handoff_audit_tenant_at"),
            models.Index(fields=["tenant", "version", "at"], name="handoff_audit_version_at"),
            models.Index(fields=["tenant", "lead", "at"], name="handoff_audit_lead_at"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.at:%Y-%m-%d %H:%M}"


class QualificationStage(models.TextChoices):
    MQL = "mql", "MQL"
    SQL = "sql", "SQL"


class Qualification(TenantOwnedModel):
    """A lead qualified as MQL or SQL under a rule version, with the reasons that held."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="+", verbose_name=_("lead")
    )
    # NOTE: RESTRICT, not PROTECT: a version that qualified leads stays, but a workspace's
    # deletion takes its qualifications and rule versions together.
    version = models.ForeignKey(
        RuleVersion, on_delete=models.RESTRICT, related_name="+", verbose_name=_("version")
    )
    transition = models.ForeignKey(
        StageTransition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("transition"),
    )
    stage = models.CharField(
        max_length=4, choices=QualificationStage.choices, verbose_name=_("stage")
    )
    score = models.IntegerField(null=True, blank=True, verbose_name=_("score"))
    reasons = models.JSONField(default=list, blank=True, verbose_name=_("reasons"))
    at = models.DateTimeField(default=now, verbose_name=_("at"))

    class Meta:
        verbose_name = _("qualification")
        verbose_name_plural = _("qualifications")
        ordering = ["-at", "-id"]
        constraints = [
            # TRICKY: one qualification per lifecycle transition: a second evaluation that
            # raced the first cannot record the same move twice.
            models.UniqueConstraint(
                fields=["tenant", "transition"],
                condition=Q(transition__isnull=False),
                name="handoff_qualification_unique_transition",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "lead", "at"], name="handoff_qual_lead_at"),
            models.Index(fields=["tenant", "version", "stage"], name="handoff_qual_version"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} v{self.version_id} lead {self.lead_id}"


# --- Routing and SLAs: assignments and their reasons, rotation positions, and SQL handoffs
# awaiting field sales' acceptance.


class Assignment(TenantOwnedModel):
    """Who received a lead when it became MQL or SQL, and why (rule, rotation, skips)."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="+", verbose_name=_("lead")
    )
    member = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Empty when no member of the team could take the lead."),
        verbose_name=_("member"),
    )
    stage = models.CharField(
        max_length=4, choices=QualificationStage.choices, verbose_name=_("stage")
    )
    version = models.ForeignKey(
        RuleVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("rule version"),
    )
    reason = models.JSONField(default=dict, blank=True, verbose_name=_("reason"))
    at = models.DateTimeField(default=now, verbose_name=_("at"))

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        ordering = ["-at", "-id"]
        indexes = [
            # capacity caps count a member's assignments of a stage in a period
            models.Index(fields=["tenant", "member", "stage", "at"], name="handoff_assign_load"),
            models.Index(fields=["tenant", "lead", "at"], name="handoff_assign_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} lead {self.lead_id} → {self.member_id}"


class RotationState(TenantOwnedModel):
    """Where a team's round-robin continues for a stage: survives restarts and deploys."""

    stage = models.CharField(
        max_length=4, choices=QualificationStage.choices, verbose_name=_("stage")
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="+", verbose_name=_("team")
    )
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("rotation state")
        verbose_name_plural = _("rotation states")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "stage", "team"], name="handoff_rotation_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage} team {self.team_id} @ {self.position}"


class HandoffState(models.TextChoices):
    AWAITING = "awaiting", _("awaiting acceptance")
    ACCEPTED = "accepted", _("accepted")
    RETURNED = "returned", _("returned")


class Handoff(TenantOwnedModel):
    """An SQL handed to field sales, who must accept or return it within N business hours."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="+", verbose_name=_("lead")
    )
    transition = models.ForeignKey(
        StageTransition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The lead's transition into SQL."),
        verbose_name=_("SQL transition"),
    )
    version = models.ForeignKey(
        RuleVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("rule version"),
    )
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    state = models.CharField(
        max_length=10,
        choices=HandoffState.choices,
        default=HandoffState.AWAITING,
        verbose_name=_("state"),
    )
    handed_at = models.DateTimeField(verbose_name=_("handed over at"))
    sla_hours = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("Business hours to accept or return, fixed when handed over."),
        verbose_name=_("SLA (business hours)"),
    )
    due_at = models.DateTimeField(null=True, blank=True, verbose_name=_("due at"))
    breached_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the SLA was found breached; a breach is never undone."),
        verbose_name=_("breached at"),
    )
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))
    returned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("returned at"))
    return_reason = models.CharField(max_length=100, blank=True, verbose_name=_("return reason"))
    return_note = models.CharField(max_length=500, blank=True, verbose_name=_("return note"))
    step = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("How many of the version's reminder and escalation steps were run."),
        verbose_name=_("escalation step"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("SQL handoff")
        verbose_name_plural = _("SQL handoffs")
        ordering = ["due_at", "id"]
        constraints = [
            # one handoff per SQL transition: a second delivery of the same move is a no-op
            models.UniqueConstraint(
                fields=["tenant", "transition"],
                condition=models.Q(transition__isnull=False),
                name="handoff_handoff_unique_transition",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "due_at"], name="handoff_handoff_queue"),
            models.Index(fields=["tenant", "owner", "state"], name="handoff_handoff_owner"),
            models.Index(fields=["tenant", "lead", "state"], name="handoff_handoff_lead"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} {self.state}"
