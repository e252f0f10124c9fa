"""Pipeline data every KPI is computed from: leads, activities, deals and their histories."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from pipeline.lifecycle import Stage
from tenants.models import Membership, Team, Tenant, TenantOwnedModel


def _external_id_unique(model: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(
        fields=["tenant", "source_system", "external_id"],
        condition=Q(external_id__isnull=False),
        name=f"{model}_unique_external_id",
    )


class _IndexedByTenant(TenantOwnedModel):
    """A high-volume tenant-owned table whose indexes all lead with tenant_id.

    Those composite indexes serve every look-up by tenant, so the foreign key's own
    single-column index would only slow each insert down.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)

    class Meta(TenantOwnedModel.Meta):
        abstract = True


class Lead(_IndexedByTenant):
    """A prospect (company and contact) as sent by the tenant's MA/SFA or created here."""

    source_system = models.CharField(
        max_length=50, blank=True, default="", help_text="The partner system of external_id."
    )
    external_id = models.CharField(max_length=200, null=True, blank=True)
    company = models.CharField(max_length=200)
    contact_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    industry = models.CharField(max_length=100, blank=True)
    employee_count = models.PositiveIntegerField(null=True, blank=True)
    title = models.CharField(max_length=150, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=50, blank=True, help_text="Channel, e.g. web, event.")
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="The owner when the lead was created, whom its creation counts for; "
        "set on insert and kept when the owner changes.",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.LEAD)
    score = models.IntegerField(default=0)
    created_at = models.DateTimeField(
        default=now, help_text="When the lead was created in the source system."
    )
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [_external_id_unique("lead")]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="lead_tenant_created"),
            models.Index(
                fields=["tenant", "owner", "created_at"], name="lead_tenant_owner_created"
            ),
            models.Index(
                fields=["tenant", "source", "created_at"], name="lead_tenant_source_created"
            ),
            models.Index(fields=["tenant", "stage"], name="lead_tenant_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.company} / {self.contact_name}".strip(" /")

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A new lead's creation counts for its owner then (DESIGN.md: lead-based facts count
        # for the owner at that time); writers in bulk set the column in their INSERT.
        if self._state.adding and self.created_owner_id is None:
            self.created_owner_id = self.owner_id
        super().save(*args, **kwargs)


class Activity(_IndexedByTenant):
    """A call, email, meeting or other touch of a lead by a rep."""

    class Type(models.TextChoices):
        CALL = "call"
        EMAIL = "email"
        MEETING = "meeting"
        OTHER = "other"

    class CallOutcome(models.TextChoices):
        CONNECTED = "connected"
        NO_ANSWER = "no_answer"
        VOICEMAIL = "voicemail"
        BUSY = "busy"
        WRONG_NUMBER = "wrong_number"
        OTHER = "other"

    source_system = models.CharField(max_length=50, blank=True, default="")
    external_id = models.CharField(max_length=200, null=True, blank=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities")
    rep = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=10, choices=Type.choices)
    occurred_at = models.DateTimeField()
    call_outcome = models.CharField(max_length=20, choices=CallOutcome.choices, blank=True)
    email_delivered = models.BooleanField(default=False)
    email_opened = models.BooleanField(default=False)
    email_clicked = models.BooleanField(default=False)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "activities"
        constraints = [_external_id_unique("activity")]
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="activity_tenant_occurred"),
            models.Index(fields=["tenant", "rep", "occurred_at"], name="activity_tenant_rep_occ"),
            # NOTE: covering: a KPI refresh reads the touched leads' histories from it
            # alone (kpis.pg_members), and a rebuild reads every activity from it in lead
            # order (kpis.pg_aggregates), without a heap fetch per row once vacuumed.
            models.Index(
                fields=["tenant", "lead", "occurred_at"],
                include=[
                    "rep",
                    "type",
                    "id",
                    "call_outcome",
                    "email_delivered",
                    "email_opened",
                    "email_clicked",
                ],
                name="activity_lead_history",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.occurred_at:%Y-%m-%d %H:%M}"


class DealStage(TenantOwnedModel):
    """One of a tenant's ordered deal stages, with its win probability (受注確度)."""

    name = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()
    win_probability = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="0 to 1.",
    )
    is_won = models.BooleanField(default=False)
    is_lost = models.BooleanField(default=False)

    class Meta:
        ordering = ["order"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="dealstage_unique_name"),
            models.UniqueConstraint(fields=["tenant", "order"], name="dealstage_unique_order"),
            models.CheckConstraint(
                condition=~(Q(is_won=True) & Q(is_lost=True)), name="dealstage_not_won_and_lost"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.is_won or self.is_lost


class Deal(_IndexedByTenant):
    """A sales opportunity's money: amount, stage, and when it was created and closed."""

    source_system = models.CharField(max_length=50, blank=True, default="")
    external_id = models.CharField(max_length=200, null=True, blank=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="deals")
    name = models.CharField(max_length=200, blank=True)
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3)
    stage = models.ForeignKey(DealStage, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sourced_by_is = models.BooleanField(default=True, help_text="Created by inside sales.")
    created_at = models.DateTimeField(default=now)
    closed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [_external_id_unique("deal")]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="deal_tenant_created"),
            models.Index(fields=["tenant", "closed_at"], name="deal_tenant_closed"),
            models.Index(fields=["tenant", "stage"], name="deal_tenant_stage"),
        ]

    def __str__(self) -> str:
        return self.name or f"Deal {self.pk}"


class DealStageChange(_IndexedByTenant):
    """A deal entered a stage at a time; the weighted pipeline on any past date follows."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    stage = models.ForeignKey(DealStage, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "deal", "stage", "at"], name="dealstagechange_unique"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "deal", "at"], name="dealstagechg_tenant_deal_at"),
            models.Index(fields=["tenant", "at"], name="dealstagechg_tenant_at"),
        ]


class StageTransition(_IndexedByTenant):
    """A lead's lifecycle change; funnels and period KPIs are computed from these rows."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # partial index below: imported and seeded changes have no actor
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="Who made the change (user, token or system)."
    )
    reason = models.CharField(max_length=500, blank=True)
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The lead's owner at the time of the change.",
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The owner's team at the time of the change.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "lead", "to_stage", "at"], name="stagetransition_unique"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "at"], name="transition_tenant_at"),
            models.Index(fields=["tenant", "to_stage", "at"], name="transition_tenant_to_at"),
            models.Index(fields=["tenant", "owner", "at"], name="transition_tenant_owner_at"),
            models.Index(fields=["tenant", "lead", "at"], name="transition_tenant_lead_at"),
            models.Index(
                fields=["actor"], name="transition_actor", condition=Q(actor__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage} → {self.to_stage} at {self.at:%Y-%m-%d %H:%M}"


class DirtyKind(enum.IntFlag):
    """The measures of a day that a write can move; a refresh recomputes only those."""

    ACTIVITIES = 1  # activity counts, leads touched, active reps
    LEADS = 2  # leads created
    TRANSITIONS = 4  # lead stage transitions
    DEALS = 8  # deals created and won, their stage changes, the weighted pipeline
    ALL = 15


class DirtyDay(TenantOwnedModel):
    """A tenant-local day whose KPI snapshots must be recomputed after data changed."""

    day = models.DateField()
    marked_at = models.DateTimeField(default=now)
    rescan = models.BooleanField(
        default=False,
        help_text=(
            "Rows of this day were changed or re-attributed, not only added: periods "
            "containing it recount their distinct members from raw rows."
        ),
    )
    kinds = models.PositiveSmallIntegerField(
        default=int(DirtyKind.ALL),
        help_text="Which measures changed (DirtyKind bits); the day keeps its other values.",
    )
    added_activities = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=(
            "Ids of the activities added on this day since its snapshot, when adding was "
            "all that happened to its activities: a refresh counts just those. Empty when "
            "its activities did not change; null when they must be recounted."
        ),
    )
    # A day whose refresh failed stays dirty, with why, and waits for its retry.
    # NOTE: database defaults: the dirty-day upsert (pipeline/dirty.py) names its columns.
    attempts = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Failed refreshes of this day since it last succeeded."
    )
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When its latest refresh failed (empty: never)."
    )
    error = models.CharField(
        max_length=300,
        blank=True,
        default="",
        db_default="",
        help_text="Why its latest refresh failed.",
    )
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not refreshed again before this time (empty: due now).",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="dirtyday_unique")]


class IngestionRequest(TenantOwnedModel):
    """The first result of a batch sent with an idempotency key, replayed on retries."""

    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="ingestionrequest_unique_key")
        ]
