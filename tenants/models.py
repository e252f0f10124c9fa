"""Tenant workspaces, their members, teams, closures and API tokens, and the tenant-owned base."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

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

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="Asia/Tokyo", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="JPY")
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    holiday_country = models.CharField(max_length=8, default="JP", validators=[validate_country])
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.JA)
    is_active = models.BooleanField(default=True)
    kpi_rebuild_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set while a full rebuild of the KPI snapshots waits or runs: values read "
        "meanwhile are marked pending.",
    )
    kpi_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        default=now,
        editable=False,
        help_text="When the first write since the last full rebuild of the KPI snapshots "
        "marked days dirty (empty: nothing since); the nightly rebuild skips the workspace "
        "while it is empty.",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


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

    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "date"], name="tenant_closure_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class Team(TenantOwnedModel):
    """A group of members (an IS team); KPIs roll up per team."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class Membership(TenantOwnedModel):
    """A user's role in a tenant, and the team they work in."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships"
    )
    display_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
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

    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by_label = models.CharField(
        max_length=150, blank=True, help_text="Who created the token, kept after they leave."
    )
    created_at = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(API_TOKEN_MAX_REQUESTS_PER_MINUTE)],
        help_text="Requests this token may make per minute; empty: the server's default.",
    )
    rows_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(API_TOKEN_MAX_ROWS_PER_MINUTE)],
        help_text="Records this token may ingest per minute; empty: the server's default.",
    )

    class Meta:
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
