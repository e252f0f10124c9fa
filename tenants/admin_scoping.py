"""The base of every tenant-owned model's admin: tenant admins see and edit only their tenant."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from tenants.principal import ANONYMOUS, Principal
from tenants.scopes import Role


def request_principal(request: HttpRequest) -> Principal:
    return getattr(request, "principal", ANONYMOUS)


def is_tenant_admin(request: HttpRequest) -> bool:
    principal = request_principal(request)
    return principal.tenant is not None and principal.role == Role.ADMIN


def can_administer(request: HttpRequest) -> bool:
    """Superusers administer every tenant; a tenant's admins administer theirs."""
    user = request.user
    if user.is_active and user.is_superuser:
        return True
    return user.is_active and user.is_staff and is_tenant_admin(request)


class TenantScopedAdmin(admin.ModelAdmin):
    """Rows come through the context-scoped default manager; the tenant is never a choice."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_administer(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A superuser in all-tenants mode picks the tenant; everyone else writes into theirs.
        return can_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        tenant = request_principal(request).tenant
        if tenant is not None:
            return queryset.filter(tenant_id=tenant.pk)
        if request.user.is_superuser:
            return queryset
        return queryset.none()

    def get_exclude(self, request: HttpRequest, obj: Model | None = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if request_principal(request).tenant is not None:
            exclude.append("tenant")
        return exclude

    def get_list_display(self, request: HttpRequest) -> Any:
        display = list(super().get_list_display(request))
        if request_principal(request).tenant is None and request.user.is_superuser:
            display.append("tenant")
        return display

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        tenant = request_principal(request).tenant
        if tenant is not None:
            obj.tenant = tenant  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
