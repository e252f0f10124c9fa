"""The base of every tenant-owned model's admin: everyone sees and edits only one tenant.

A tenant's admins work in their tenant; a superuser works in one tenant at a time too,
chosen with the tenant switcher (POST /tenant/switch/, any tenant for them). With no
tenant chosen, tenant-owned lists are empty: the database shows the app role no rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from tenants.principal import ANONYMOUS, Principal
from tenants.scopes import Role


def request_principal(request: HttpRequest) -> Principal:
    return getattr(request, "principal", ANONYMOUS)


def is_tenant_admin(request: HttpRequest) -> bool:
    principal = request_principal(request)
    return principal.tenant is not None and principal.role == Role.ADMIN


def can_administer(request: HttpRequest) -> bool:
    """Superusers administer any tenant (one at a time); a tenant's admins theirs."""
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
        # Rows are written into the tenant in context, so one must be chosen.
        return can_administer(request) and request_principal(request).tenant is not None

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_administer(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        tenant = request_principal(request).tenant
        if tenant is None:
            return self.model.all_tenants.none()  # type: ignore[attr-defined]
        return super().get_queryset(request).filter(tenant_id=tenant.pk)

    def get_exclude(self, request: HttpRequest, obj: Model | None = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        exclude.append("tenant")
        return exclude

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        tenant = request_principal(request).tenant
        if tenant is not None:
            obj.tenant = tenant  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows, so a changelist over millions of rows stays fast.

    Pages past the cap are not offered; search, filters and the date hierarchy narrow the
    list instead (the admin shows "more than N" as the cap).
    """

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        # NOTE: SELECT COUNT(*) FROM (... LIMIT cap): bounded whatever the table's size.
        return self.object_list[: self.COUNT_CAP].count()


class ReadOnlyTenantScopedAdmin(TenantScopedAdmin):
    """Browsable, never written through the admin: rows come from ingestion and services."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
