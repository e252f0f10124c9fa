"""Django admin for dashboards: tenant-scoped, widgets inline with their config validated."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from reports.dashboards import widget_config_validate
from reports.models import (
    ChecklistDecision,
    Dashboard,
    DashboardWidget,
    Report,
    ReportSubscription,
    SharedKpi,
)
from tenants.admin_scoping import TenantScopedAdmin, request_principal
from tenants.errors import PublicError
from tenants.models import Membership


class DashboardWidgetForm(forms.ModelForm):
    """Validates the widget's config for its kind through the dashboards service."""

    class Meta:
        model = DashboardWidget
        fields = ["kind", "title", "order", "config"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = getattr(self, "request_tenant", None)
        if tenant is None or self.errors or "kind" not in data:
            return data
        try:
            data["config"] = widget_config_validate(
                tenant=tenant, kind=data["kind"], config=data.get("config")
            )
        except PublicError as error:
            raise forms.ValidationError({"config": error.message}) from error
        return data


class DashboardWidgetInline(admin.TabularInline):
    model = DashboardWidget
    form = DashboardWidgetForm
    extra = 0
    fields = ["order", "kind", "title", "config"]

    def get_queryset(self, request: HttpRequest) -> Any:
        tenant = request_principal(request).tenant
        if tenant is None:
            return DashboardWidget.all_tenants.none()
        return DashboardWidget.all_tenants.filter(tenant_id=tenant.pk)

    def get_formset(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.request_tenant = request_principal(request).tenant
        return formset


@admin.register(Dashboard)
class DashboardAdmin(TenantScopedAdmin):
    list_display = ["name", "is_shared", "default_for_role", "owner", "updated_at"]
    list_filter = ["is_shared", "default_for_role"]
    search_fields = ["name"]
    fields = ["name", "is_shared", "default_for_role", "owner"]
    inlines = [DashboardWidgetInline]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = request_principal(request).tenant
        if db_field.name == "owner":
            kwargs["queryset"] = (
                Membership.objects.filter(tenant_id=tenant.pk)
                if tenant is not None
                else Membership.all_tenants.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        tenant = request_principal(request).tenant
        for inline_form in formset.forms:
            if tenant is not None and inline_form.instance is not None:
                inline_form.instance.tenant = tenant
        super().save_formset(request, form, formset, change)


@admin.register(Report)
class ReportAdmin(TenantScopedAdmin):
    """Generated reports, read-only (regenerate them over GraphQL)."""

    list_display = ["kind", "period_label", "scope_type", "scope_key", "generated_at"]
    list_filter = ["kind", "scope_type"]
    fields = ["kind", "period_label", "scope_type", "scope_key", "language", "generated_at", "data"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ChecklistDecision)
class ChecklistDecisionAdmin(TenantScopedAdmin):
    """The checklist items a person decides (review meetings, MQL/SQL agreement, ...)."""

    list_display = ["item", "value", "decided_by", "decided_at"]
    fields = ["item", "value", "decided_at"]


@admin.register(SharedKpi)
class SharedKpiAdmin(TenantScopedAdmin):
    """KPIs shared by marketing, inside sales and field sales (共通KPI)."""

    list_display = ["kpi_key", "owner_department", "note"]
    fields = ["kpi_key", "owner_department", "note"]


class ReportSubscriptionForm(forms.ModelForm):
    class Meta:
        model = ReportSubscription
        # NOTE: `member` is added by the admin inside a request (its choices need the
        # tenant in context), not at import.
        fields = ["kind", "subscribed"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The tenant is not a form field, so Django cannot check the unique constraint.
        taken = ReportSubscription.objects.filter(
            member=data.get("member"), kind=data.get("kind")
        ).exclude(pk=self.instance.pk)
        if data.get("member") is not None and taken.exists():
            raise forms.ValidationError("This member already has a setting for this kind.")
        return data


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(TenantScopedAdmin):
    """Members' choices about reports: no row means the member receives their own view."""

    form = ReportSubscriptionForm
    list_display = ["member", "kind", "subscribed", "updated_at"]
    list_filter = ["kind", "subscribed"]
    fields = ["member", "kind", "subscribed"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = request_principal(request).tenant
        if db_field.name == "member":
            kwargs["queryset"] = (
                Membership.objects.filter(tenant_id=tenant.pk)
                if tenant is not None
                else Membership.all_tenants.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
