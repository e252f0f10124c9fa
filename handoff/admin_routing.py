"""Django admin of routing and SLAs: assignments and SQL handoffs, read-only (they are
written by routing and the handoff services, which audit every change)."""

from __future__ import annotations

from django.contrib import admin

from handoff.models import Assignment, Handoff
from tenants.admin_scoping import ReadOnlyTenantScopedAdmin


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["at", "stage", "lead", "member", "version"]
    list_filter = ["stage"]
    list_select_related = ["lead", "member__user", "version"]
    date_hierarchy = "at"


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["handed_at", "lead", "owner", "state", "due_at", "breached_at", "return_reason"]
    list_filter = ["state"]
    list_select_related = ["lead", "owner__user"]
    date_hierarchy = "handed_at"
