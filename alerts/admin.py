"""Django admin of alert rules (validated by the rules service) and alerts (read-only, with
an acknowledge action), scoped to the admin's tenant."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from alerts import services
from alerts.models import Alert, AlertEvent, AlertRule
from tenants.admin_scoping import TenantScopedAdmin, request_principal
from tenants.errors import PublicError, camel_case

_RULE_FIELDS = {camel_case(name): name for name in services.RULE_FIELDS} | {
    "kpi": "kpi_key",
    "scope": "scope_key",
}


class AlertRuleForm(forms.ModelForm):
    """Validates through alert_rule_validate: the same checks as GraphQL."""

    request_tenant: Any = None

    class Meta:
        model = AlertRule
        fields = list(services.RULE_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = self.request_tenant or (self.instance.tenant if self.instance.tenant_id else None)
        if tenant is None or self.errors:
            return data
        rule = AlertRule(tenant=tenant, **{name: data.get(name) for name in services.RULE_FIELDS})
        rule.pk = self.instance.pk
        rule.scope_key = rule.scope_key or ""
        rule.kpi_key = rule.kpi_key or ""
        rule.recipient_member_ids = rule.recipient_member_ids or []
        rule.recipient_roles = rule.recipient_roles or []
        rule.channels = rule.channels or []
        try:
            services.alert_rule_validate(tenant=tenant, rule=rule)
        except PublicError as error:
            field = _RULE_FIELDS.get(error.field or "")
            raise forms.ValidationError(
                {field: error.message} if field else error.message
            ) from error
        for name in services.RULE_FIELDS:
            data[name] = getattr(rule, name)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    form = AlertRuleForm
    list_display = ("name", "kind", "kpi_key", "scope_type", "grain", "threshold", "is_active")
    list_filter = ("kind", "is_active")

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.request_tenant = request_principal(request).tenant
        return form


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ("kind", "at", "actor_label", "data")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(TenantScopedAdmin):
    list_display = ("rule", "scope_type", "scope_key", "period_label", "state", "last_fired_at")
    list_filter = ("state",)
    inlines = [AlertEventInline]
    actions = ["acknowledge"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # alerts move by evaluation and the lifecycle actions only

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.action(description="Acknowledge the selected firing alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        principal = request_principal(request)
        done = 0
        for alert in queryset.filter(state=Alert.State.FIRING):
            services.alert_acknowledge(
                tenant=alert.tenant,
                alert=alert,
                actor=principal.membership,
                actor_label=request.user.get_username(),
            )
            done += 1
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
