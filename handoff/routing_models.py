"""Models of routing and SLAs: assignments and their reasons, rotation positions, and SQL
handoffs awaiting field sales' acceptance (imported by handoff.models)."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from handoff.models import QualificationStage, RuleVersion
from pipeline.models import Lead, StageTransition
from tenants.models import Membership, Team, TenantOwnedModel


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
