"""Tenant workspaces, their members, teams, closures and API tokens, and the tenant-owned base."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from tenants.context import TenantNotSet, _scope, current_tenant_id
from tenants.scopes import Role


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.", code="invalid_timezone")


def validate_country(value: str) -> None:
    import holidays

    if value not in holidays.list_supported_countries():
        raise ValidationError(f"No holiday calendar for {value!r}.", code="invalid_country")


class Tenant(models.Model):
    """A customer workspace; every business row belongs to exactly one."""

    class Language(models.TextChoices):
        JA = "ja", "日本語"
        EN = "en", "English"

    slug = models.SlugField(max_length=63, unique=True, verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    timezone = models.CharField(
        max_length=64,
        default="Asia/Tokyo",
        validators=[validate_timezone],
        verbose_name=_("time zone"),
    )
    currency = models.CharField(max_length=3, default="JPY", verbose_name=_("currency"))
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        verbose_name=_("fiscal year start month"),
    )
    holiday_country = models.CharField(
        max_length=8, default="JP", validators=[validate_country], verbose_name=_("holiday country")
    )
    language = models.CharField(
        max_length=2, choices=Language.choices, default=Language.JA, verbose_name=_("language")
    )
    business_opens = models.TimeField(
        default=datetime.time(9, 0),
        help_text=_("Local time business hours start on working days (handoff SLAs, silence)."),
        verbose_name=_("business hours open"),
    )
    business_closes = models.TimeField(
        default=datetime.time(18, 0),
        help_text=_("Local time business hours end on working days; after the opening time."),
        verbose_name=_("business hours close"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("active"))
    kpi_rebuild_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set while a full rebuild of the KPI snapshots waits or runs: values read "
            "meanwhile are marked pending."
        ),
        verbose_name=_("KPI rebuild requested at"),
    )
    kpi_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        default=now,
        editable=False,
        help_text=_(
            "When the first write since the last full rebuild of the KPI snapshots marked "
            "days dirty (empty: nothing since); the nightly rebuild skips the workspace while "
            "it is empty."
        ),
        verbose_name=_("KPI data changed at"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("workspace")
        verbose_name_plural = _("workspaces")
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(business_opens__lt=models.F("business_closes")),
                name="tenant_business_hours_order",
                violation_error_message=_("Business hours must open before they close."),
            )
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if (
            self.business_opens is not None
            and self.business_closes is not None
            and self.business_opens >= self.business_closes
        ):
            raise ValidationError(
                {"business_closes": _("Business hours must open before they close.")},
                code="invalid_business_hours",
            )


class TenantQuerySet(models.QuerySet):
    """QuerySet of tenant-owned rows."""


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """Default manager: only the rows of the tenant in context; raises when there is none."""

    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        scope = _scope.get()
        if scope.all_tenants:
            return queryset
        if scope.tenant_id is None:
            raise TenantNotSet(
                f"{self.model.__name__} read with no tenant in context; wrap the code in "
                "tenant_context(tenant) or, for cross-tenant workers, dangerously_all_tenants()."
            )
        return queryset.filter(tenant_id=scope.tenant_id)


class TenantOwnedModel(models.Model):
    """Abstract base of every tenant-owned model: a non-null tenant and a scoped manager."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()
    # Loudly named escape hatch for workers that iterate tenants (RLS still applies in PG).
    all_tenants = models.Manager()

    class Meta:
        abstract = True
        base_manager_name = "all_tenants"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # NOTE: a guard, not business logic: a row can only be written into the tenant in
        # context, so a mistaken tenant never reaches the database (RLS also refuses it).
        context_tenant = current_tenant_id()
        if self.tenant_id is None and context_tenant is not None:
            self.tenant_id = context_tenant
        if context_tenant is not None and self.tenant_id != context_tenant:
            raise TenantNotSet(f"Refusing to write a {type(self).__name__} of another tenant.")
        super().save(*args, **kwargs)


class TenantClosure(TenantOwnedModel):
    """A day the tenant does not work besides public holidays (年末年始, お盆, ...)."""

    date = models.DateField(verbose_name=_("date"))
    name = models.CharField(max_length=100, blank=True, verbose_name=_("name"))

    class Meta:
        verbose_name = _("closure day")
        verbose_name_plural = _("closure days")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "date"], name="tenant_closure_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class Team(TenantOwnedModel):
    """A group of members (an IS team); KPIs roll up per team."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class Membership(TenantOwnedModel):
    """A user's role in a tenant, and the team they work in."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(
        max_length=20, choices=[(r.value, r.value) for r in Role], verbose_name=_("role")
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="memberships",
        verbose_name=_("team"),
    )
    display_name = models.CharField(max_length=150, blank=True, verbose_name=_("display name"))
    is_active = models.BooleanField(default=True, verbose_name=_("active"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


# Bounds of a token's own rate limits; a limit left empty follows the settings' defaults.
API_TOKEN_MAX_REQUESTS_PER_MINUTE = 100_000
API_TOKEN_MAX_ROWS_PER_MINUTE = 10_000_000


class ApiToken(TenantOwnedModel):
    """A secret for partner tools, bound to a tenant (not a person); only a hash is stored."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    key_id = models.CharField(max_length=16, unique=True, editable=False, verbose_name=_("key ID"))
    secret_hash = models.CharField(max_length=64, editable=False, verbose_name=_("secret hash"))
    scopes = models.JSONField(default=list, verbose_name=_("scopes"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_by_label = models.CharField(
        max_length=150,
        blank=True,
        help_text=_("Who created the token, kept after they leave."),
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(API_TOKEN_MAX_REQUESTS_PER_MINUTE)],
        help_text=_("Requests this token may make per minute; empty: the server's default."),
        verbose_name=_("requests per minute"),
    )
    rows_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(API_TOKEN_MAX_ROWS_PER_MINUTE)],
        help_text=_("Records this token may ingest per minute; empty: the server's default."),
        verbose_name=_("rows per minute"),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="apitoken_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def prefix(self) -> str:
        """The public part shown in lists, enough to recognise a token."""
        return f"{settings.API_TOKEN_PREFIX}_{self.key_id}"

    def is_usable(self, at: Any = None) -> bool:
        at = at or now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class MemberAbsence(TenantOwnedModel):
    """A member's leave (休暇) from one day to another, both included: routing skips them."""

    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="absences", verbose_name=_("member")
    )
    start_date = models.DateField(verbose_name=_("first day"))
    end_date = models.DateField(verbose_name=_("last day"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("member absence")
        verbose_name_plural = _("member absences")
        ordering = ["start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start_date__lte=models.F("end_date")),
                name="memberabsence_dates_order",
                violation_error_message=_("An absence cannot end before it starts."),
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "end_date", "start_date"], name="memberabsence_days")
        ]

    def __str__(self) -> str:
        return f"{self.member} {self.start_date}..{self.end_date}"


# The first day of a member's history: the team before any recorded move.
SINCE_ALWAYS = datetime.date(1, 1, 1)


class MemberTeamSpan(TenantOwnedModel):
    """The team a member was in over tenant-local days [valid_from, valid_until).

    A member's spans are contiguous and never overlap: the first starts at SINCE_ALWAYS and
    the last is open (valid_until empty) and holds the member's current team. Every
    team-scoped KPI fact counts for the team of its rep on the fact's local day
    (docs/kpis.md "Scopes"); tenants.team_history writes the spans.
    """

    member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="team_spans", verbose_name=_("member")
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("team"),
    )
    valid_from = models.DateField(verbose_name=_("from (local day)"))
    valid_until = models.DateField(
        null=True,
        blank=True,
        help_text=_("The first local day in the next team; empty: still in this one."),
        verbose_name=_("until (local day, excluded)"),
    )
    recorded_at = models.DateTimeField(default=now, editable=False, verbose_name=_("recorded at"))

    class Meta:
        verbose_name = _("team history")
        verbose_name_plural = _("team history")
        ordering = ["member", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "valid_from"], name="memberteamspan_unique_start"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_from__lt=models.F("valid_until")),
                name="memberteamspan_dates_order",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "valid_from"], name="memberteamspan_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.team_id} {self.valid_from}..{self.valid_until or ''}"
