"""Django admin of webhook endpoints (validated by the service; the secret shown once, on
creation or rotation) and their deliveries (read-only, with attempts and redelivery)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from notifications import services
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenants.admin_scoping import TenantScopedAdmin, request_principal
from tenants.errors import PublicError

_FIELDS = {"name": "name", "url": "url", "eventTypes": "event_types", "format": "format"}


class WebhookEndpointForm(forms.ModelForm):
    """Checks the URL and event types as the GraphQL mutations do."""

    class Meta:
        model = WebhookEndpoint
        fields = list(services.ENDPOINT_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        probe = WebhookEndpoint(**{name: data.get(name) for name in services.ENDPOINT_FIELDS})
        probe.event_types = probe.event_types or []
        try:
            services.webhook_endpoint_validate(endpoint=probe)
        except PublicError as error:
            field = _FIELDS.get(error.field or "")
            raise forms.ValidationError(
                {field: error.message} if field else error.message
            ) from error
        data["event_types"] = probe.event_types
        data["name"] = probe.name
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "format", "is_active", "secret_hint", "secret_rotated_at")
    list_filter = ("format", "is_active")
    readonly_fields = ("secret_hint", "secret_rotated_at")
    actions = ["rotate_secret"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        tenant = request_principal(request).tenant
        if change:
            services.webhook_endpoint_update(
                tenant=tenant,
                endpoint=obj,
                **{name: form.cleaned_data[name] for name in services.ENDPOINT_FIELDS},
            )
            return
        endpoint, secret = services.webhook_endpoint_create(
            tenant=tenant, **{name: form.cleaned_data[name] for name in services.ENDPOINT_FIELDS}
        )
        obj.pk = endpoint.pk
        # NOTE: the one time the secret is shown; it is never readable again.
        self.message_user(
            request,
            f"Signing secret (copy it now, it is not shown again): {secret}",
            messages.WARNING,
        )

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        tenant = request_principal(request).tenant
        for endpoint in queryset:
            _, secret = services.webhook_secret_rotate(tenant=tenant, endpoint=endpoint)
            self.message_user(
                request, f"{endpoint.name}: new signing secret {secret}", messages.WARNING
            )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "status_code", "response_ms", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    list_display = ("event", "endpoint", "state", "attempts", "last_status_code", "next_attempt_at")
    list_filter = ("state",)
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.action(description="Redeliver now")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        tenant = request_principal(request).tenant
        for delivery in queryset:
            services.webhook_delivery_redeliver(tenant=tenant, delivery=delivery)
        self.message_user(request, f"{queryset.count()} delivery(ies) queued.", messages.SUCCESS)
