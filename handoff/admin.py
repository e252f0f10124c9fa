"""Django admin of handoff, read-mostly and scoped to the admin's tenant: rule sets and
versions change through the services (GraphQL), where agreement and audit are enforced."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from handoff.models import (
    Approval,
    Assignment,
    AuditEntry,
    Handoff,
    Qualification,
    RuleSet,
    RuleVersion,
)
from tenants.admin_scoping import ReadOnlyTenantScopedAdmin


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    fields = ("side", "member", "at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class RuleVersionInline(admin.TabularInline):
    model = RuleVersion
    extra = 0
    can_delete = False
    fields = ("number", "status", "approved_at", "activated_at", "retired_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [RuleVersionInline]


@admin.register(RuleVersion)
class RuleVersionAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("rule_set", "number", "status", "approved_at", "activated_at", "retired_at")
    list_filter = ("status",)
    list_select_related = ("rule_set",)
    inlines = [ApprovalInline]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("at", "action", "actor_label", "version", "lead")
    list_filter = ("action",)
    list_select_related = ("version", "lead")
    date_hierarchy = "at"


@admin.register(Qualification)
class QualificationAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("at", "stage", "lead", "version", "score")
    list_filter = ("stage",)
    list_select_related = ("lead", "version")
    raw_id_fields = ("lead", "transition")
    date_hierarchy = "at"


# Routing and SLAs: written by routing and the handoff services, which audit every change.


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
