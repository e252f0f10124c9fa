"""Django admin for tenants: workspaces, members, teams, closures and API tokens."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tenants import cross_tenant, services, team_history
from tenants.admin_scoping import (
    TenantScopedAdmin,
    can_administer,
    request_principal,
)
from tenants.context import tenant_context
from tenants.errors import PublicError
from tenants.models import (
    ApiToken,
    MemberAbsence,
    Membership,
    MemberTeamSpan,
    Team,
    Tenant,
    TenantClosure,
)
from tenants.scopes import TOKEN_SCOPES, Scope

# What each token scope lets a partner tool do, as the admin shows it.
SCOPE_LABELS = {
    Scope.RECORDS_READ: _("Read records (leads, activities, deals)"),
    Scope.RECORDS_WRITE: _("Send records (ingestion)"),
    Scope.KPIS_READ: _("Read KPIs"),
    Scope.KPIS_WRITE: _("Edit targets, trees, alert rules and reports"),
    Scope.CONFIG_WRITE: _("Edit workspace settings and teams"),
    Scope.TOKENS_MANAGE: _("Manage API tokens"),
}


def scope_label(scope: str) -> str:
    return str(SCOPE_LABELS.get(scope, scope))  # type: ignore[call-overload]


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class TenantForm(forms.ModelForm):
    """A time zone is picked from the IANA zones, not typed (and so always valid)."""

    timezone = forms.TypedChoiceField(choices=time_zone_choices, label=_("time zone"))

    class Meta:
        model = Tenant
        fields = [
            "slug",
            "name",
            "timezone",
            "language",
            "currency",
            "fiscal_year_start_month",
            "holiday_country",
            "business_opens",
            "business_closes",
            "is_active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # NOTE: left empty, business hours keep their value (09:00-18:00 for a new workspace),
        # so a form posted without them, as before they existed, still saves.
        for name in ("business_opens", "business_closes"):
            self.fields[name].required = False

    def _clean_hours(self, name: str) -> Any:
        value = self.cleaned_data.get(name)
        if value is None:
            value = getattr(self.instance, name, None) or Tenant._meta.get_field(name).default
        return value

    def clean_business_opens(self) -> Any:
        return self._clean_hours("business_opens")

    def clean_business_closes(self) -> Any:
        return self._clean_hours("business_closes")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = [
        "slug",
        "name",
        "timezone",
        "language",
        "currency",
        "fiscal_year_start_month",
        "is_active",
    ]
    search_fields = ["slug", "name"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_administer(request)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """What the confirmation page shows: the workspace's rows are visible only in its
        context. Deleting a workspace (superusers only) takes all of them, whatever each
        row's own admin allows (pipeline rows, for one, are deleted by their writers only).
        NOTE: the rows are counted per kind, not listed one by one under the workspace (a
        demo workspace alone has 60,000; a large one, millions)."""
        objs = list(objs)
        if len(objs) != 1:
            deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        else:
            with tenant_context(objs[0].pk):
                deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return [entry for entry in deleted if not isinstance(entry, list)], counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.tenant_delete(tenant=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for tenant in queryset:
            services.tenant_delete(tenant=tenant)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [] if request.user.is_superuser else ["slug", "is_active", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        tenant = request_principal(request).tenant
        if tenant is not None:
            return queryset.filter(pk=tenant.pk)
        return queryset if request.user.is_superuser else queryset.none()


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(TenantClosure)
class TenantClosureAdmin(TenantScopedAdmin):
    list_display = ["date", "name"]


@admin.register(MemberAbsence)
class MemberAbsenceAdmin(TenantScopedAdmin):
    list_display = ["member", "start_date", "end_date", "note"]
    list_filter = ["start_date"]


class MembershipForm(forms.ModelForm):
    """A team change is a move recorded in the member's team history, from a given day."""

    team_effective_from = forms.DateField(
        required=False,
        label=_("team move effective from"),
        help_text=_(
            "With a new team: the workspace-local day the move takes effect (today if empty); "
            "it may be in the past, never in the future. KPIs of the days it covers are "
            "recomputed."
        ),
    )

    # NOTE: no Meta: the admin builds it per request, once a tenant is in context (the
    # team and user choices are read from the tenant's rows).

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        day = data.get("team_effective_from")
        if self.instance.pk is not None and "team" in self.changed_data:
            tenant = Tenant.objects.get(pk=self.instance.tenant_id)
            try:
                team_history.effective_day(day, tenant=tenant)
            except PublicError as error:
                raise forms.ValidationError({"team_effective_from": error.message}) from error
        elif day is not None:
            raise forms.ValidationError(
                {"team_effective_from": _("An effective day goes with a team move.")}
            )
        return data


class MemberTeamSpanInline(admin.TabularInline):
    """The member's team history (written by team moves, never edited here)."""

    model = MemberTeamSpan
    fields = ["team", "valid_from", "valid_until", "recorded_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["valid_from"]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    inlines = [MemberTeamSpanInline]
    list_display = ["user", "role", "team", "is_active"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "display_name"]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not change or "team" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        # The move goes through the team history; the other fields are saved as usual.
        team = obj.team  # type: ignore[attr-defined]
        obj.team_id = form.initial.get("team")  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
        team_history.member_team_move(
            membership=obj,  # type: ignore[arg-type]
            team=team,
            effective_from=form.cleaned_data.get("team_effective_from"),
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = request_principal(request).tenant
        if db_field.name == "user" and tenant is not None:
            # Tenant admins must not browse other tenants' users.
            kwargs["queryset"] = get_user_model().objects.filter(
                pk__in=Membership.objects.values("user_id")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


_FORM_FIELDS = {
    "expiresAt": "expires_at",
    "requestsPerMinute": "requests_per_minute",
    "rowsPerMinute": "rows_per_minute",
}


class ApiTokenCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, f"{scope_label(s)} ({s})") for s in sorted(TOKEN_SCOPES)],
        widget=forms.CheckboxSelectMultiple,
        label=_("scopes"),
    )

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "expires_at", "requests_per_minute", "rows_per_minute"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            services.api_token_validate_input(
                name=data.get("name") or "",
                scopes=data.get("scopes") or [],
                expires_at=data.get("expires_at"),
            )
            services.api_token_validate_limits(
                requests_per_minute=data.get("requests_per_minute"),
                rows_per_minute=data.get("rows_per_minute"),
            )
        except PublicError as error:
            field = _FORM_FIELDS.get(error.field or "", error.field)
            raise forms.ValidationError(
                {field: error.message} if field else error.message
            ) from error
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    list_display = [
        "name",
        "prefix",
        "scope_labels",
        "created_by_label",
        "expires_at",
        "requests_per_minute",
        "rows_per_minute",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_by_label", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return ["name", "scopes", "expires_at", "requests_per_minute", "rows_per_minute"]
        return [
            "name",
            "prefix",
            "scope_labels",
            "created_by_label",
            "created_at",
            "expires_at",
            "requests_per_minute",
            "rows_per_minute",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return []
        return [
            "prefix",
            "scope_labels",
            "created_by_label",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # revoke instead, so the audit trail stays

    @admin.display(description=_("scopes"))
    def scope_labels(self, obj: ApiToken) -> str:
        return ", ".join(scope_label(scope) for scope in obj.scopes)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            services.api_token_update(
                tenant=obj.tenant,
                token_id=obj.pk,
                name=form.cleaned_data["name"],
                requests_per_minute=form.cleaned_data.get("requests_per_minute"),
                rows_per_minute=form.cleaned_data.get("rows_per_minute"),
            )
            return
        tenant = request_principal(request).tenant
        token, secret = services.api_token_create(
            tenant=tenant,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
            requests_per_minute=form.cleaned_data.get("requests_per_minute"),
            rows_per_minute=form.cleaned_data.get("rows_per_minute"),
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Copy this token now; it will not be shown again: %(secret)s") % {"secret": secret},
        )

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        tokens = list(queryset)
        for token in tokens:
            services.api_token_revoke(tenant=token.tenant, token_id=token.pk)
        count = len(tokens)
        messages.success(
            request,
            ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", count)
            % {"count": count},
        )


class AccountAdmin(UserAdmin):
    """Django's user admin, deleting an account tenant by tenant (tenants.cross_tenant)."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        cross_tenant.user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            cross_tenant.user_delete(user=user)


if admin.site.is_registered(get_user_model()):
    admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), AccountAdmin)
