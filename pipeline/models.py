"""Pipeline data every KPI is computed from: leads, activities, deals and their histories."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

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
        max_length=50,
        blank=True,
        default="",
        help_text=_("The partner system of external_id."),
        verbose_name=_("source system"),
    )
    external_id = models.CharField(
        max_length=200, null=True, blank=True, verbose_name=_("external ID")
    )
    company = models.CharField(max_length=200, verbose_name=_("company"))
    contact_name = models.CharField(max_length=200, blank=True, verbose_name=_("contact name"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    industry = models.CharField(max_length=100, blank=True, verbose_name=_("industry"))
    employee_count = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("employee count")
    )
    title = models.CharField(max_length=150, blank=True, verbose_name=_("title"))
    attributes = models.JSONField(default=dict, blank=True, verbose_name=_("attributes"))
    source = models.CharField(
        max_length=50,
        blank=True,
        help_text=_("Channel, e.g. web, event."),
        verbose_name=_("source"),
    )
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    created_owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text=_(
            "The owner when the lead was created, whom its creation counts for; "
            "set on insert and kept when the owner changes."
        ),
        verbose_name=_("owner at creation"),
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("team"),
    )
    stage = models.CharField(
        max_length=20, choices=Stage.choices, default=Stage.LEAD, verbose_name=_("stage")
    )
    score = models.IntegerField(default=0, verbose_name=_("score"))
    created_at = models.DateTimeField(
        default=now,
        help_text=_("When the lead was created in the source system."),
        verbose_name=_("created at"),
    )
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
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
        CALL = "call", _("call")
        EMAIL = "email", _("e-mail")
        MEETING = "meeting", _("meeting")
        OTHER = "other", _("other")

    class CallOutcome(models.TextChoices):
        CONNECTED = "connected", _("connected")
        NO_ANSWER = "no_answer", _("no answer")
        VOICEMAIL = "voicemail", _("voicemail")
        BUSY = "busy", _("busy")
        WRONG_NUMBER = "wrong_number", _("wrong number")
        OTHER = "other", _("other")

    source_system = models.CharField(
        max_length=50, blank=True, default="", verbose_name=_("source system")
    )
    external_id = models.CharField(
        max_length=200, null=True, blank=True, verbose_name=_("external ID")
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="activities", verbose_name=_("lead")
    )
    rep = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("rep"),
    )
    type = models.CharField(max_length=10, choices=Type.choices, verbose_name=_("type"))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    call_outcome = models.CharField(
        max_length=20, choices=CallOutcome.choices, blank=True, verbose_name=_("call outcome")
    )
    email_delivered = models.BooleanField(default=False, verbose_name=_("e-mail delivered"))
    email_opened = models.BooleanField(default=False, verbose_name=_("e-mail opened"))
    email_clicked = models.BooleanField(default=False, verbose_name=_("e-mail clicked"))
    duration_seconds = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("duration (seconds)")
    )
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        constraints = [_external_id_unique("activity")]
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="activity_tenant_occurred"),
            models.Index(fields=["tenant", "rep", "occurred_at"], name="activity_tenant_rep_occ"),
            # NOTE: covering: a KPI refresh reads the touched leads' histories from it
            # alone (kpis.snapshots.members_sql), and a rebuild reads every activity from it
            # in lead order (kpis.snapshots.daily_sql), without a heap fetch per row once
            # vacuumed.
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

    name = models.CharField(max_length=100, verbose_name=_("name"))
    order = models.PositiveSmallIntegerField(verbose_name=_("order"))
    win_probability = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text=_("0 to 1."),
        verbose_name=_("win probability"),
    )
    is_won = models.BooleanField(default=False, verbose_name=_("won"))
    is_lost = models.BooleanField(default=False, verbose_name=_("lost"))

    class Meta:
        verbose_name = _("deal stage")
        verbose_name_plural = _("deal stages")
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

    source_system = models.CharField(
        max_length=50, blank=True, default="", verbose_name=_("source system")
    )
    external_id = models.CharField(
        max_length=200, null=True, blank=True, verbose_name=_("external ID")
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="deals", verbose_name=_("lead")
    )
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    amount = models.DecimalField(max_digits=16, decimal_places=2, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    # NOTE: RESTRICT, not PROTECT: a stage in use cannot be deleted on its own, but a
    # workspace's deletion takes its deals and stages together (PROTECT refused it).
    stage = models.ForeignKey(
        DealStage, on_delete=models.RESTRICT, related_name="+", verbose_name=_("stage")
    )
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    sourced_by_is = models.BooleanField(
        default=True,
        help_text=_("Created by inside sales."),
        verbose_name=_("sourced by inside sales"),
    )
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
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

    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="stage_changes", verbose_name=_("deal")
    )
    stage = models.ForeignKey(
        DealStage, on_delete=models.RESTRICT, related_name="+", verbose_name=_("stage")
    )
    at = models.DateTimeField(verbose_name=_("at"))

    class Meta:
        verbose_name = _("deal stage change")
        verbose_name_plural = _("deal stage changes")
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

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="transitions", verbose_name=_("lead")
    )
    from_stage = models.CharField(
        max_length=20, choices=Stage.choices, verbose_name=_("from stage")
    )
    to_stage = models.CharField(max_length=20, choices=Stage.choices, verbose_name=_("to stage"))
    at = models.DateTimeField(verbose_name=_("at"))
    actor = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # partial index below: imported and seeded changes have no actor
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(
        max_length=150,
        blank=True,
        help_text=_("Who made the change (user, token or system)."),
        verbose_name=_("actor"),
    )
    reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The lead's owner at the time of the change."),
        verbose_name=_("owner"),
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The owner's team at the time of the change."),
        verbose_name=_("team"),
    )
    created = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))

    class Meta:
        verbose_name = _("stage transition")
        verbose_name_plural = _("stage transitions")
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

    day = models.DateField(verbose_name=_("day"))
    marked_at = models.DateTimeField(default=now, verbose_name=_("marked at"))
    rescan = models.BooleanField(
        default=False,
        help_text=_(
            "Rows of this day were changed or re-attributed, not only added: periods "
            "containing it recount their distinct members from raw rows."
        ),
        verbose_name=_("rescan"),
    )
    kinds = models.PositiveSmallIntegerField(
        default=int(DirtyKind.ALL),
        help_text=_("Which measures changed (DirtyKind bits); the day keeps its other values."),
        verbose_name=_("kinds"),
    )
    added_activities = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=_(
            "Ids of the activities added on this day since its snapshot, when adding was "
            "all that happened to its activities: a refresh counts just those. Empty when "
            "its activities did not change; null when they must be recounted."
        ),
        verbose_name=_("added activities"),
    )
    # A day whose refresh failed stays dirty, with why, and waits for its retry.
    # NOTE: database defaults: the dirty-day upsert (pipeline/dirty.py) names its columns.
    attempts = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text=_("Failed refreshes of this day since it last succeeded."),
        verbose_name=_("attempts"),
    )
    failed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When its latest refresh failed (empty: never)."),
        verbose_name=_("failed at"),
    )
    error = models.CharField(
        max_length=300,
        blank=True,
        default="",
        db_default="",
        help_text=_("Why its latest refresh failed."),
        verbose_name=_("error"),
    )
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Not refreshed again before this time (empty: due now)."),
        verbose_name=_("retry at"),
    )

    class Meta:
        verbose_name = _("dirty day")
        verbose_name_plural = _("dirty days")
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


# NOTE: defined in its package, registered with this app's models.
from pipeline.imports.models import ImportPreset  # noqa: E402, F401
