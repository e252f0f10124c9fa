"""Django admin for KPIs: targets, trees with their nodes, tenant-defined KPIs, snapshots and
the days waiting for (or failing) their refresh."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from kpis import targets as target_services
from kpis import trees as tree_services
from kpis.catalogue import CATALOGUE_BY_KEY, KEY_PATTERN, MEASURES
from kpis.models import KpiCustomDefinition, KpiSnapshot, KpiTarget, KpiTree, KpiTreeNode
from kpis.periods import PeriodError, period_containing
from kpis.scopes import NO_SOURCE_LABEL, KpiScope, ScopeType
from pipeline.models import DirtyDay
from tenants.admin_scoping import (
    ReadOnlyTenantScopedAdmin,
    TenantScopedAdmin,
    can_administer,
    request_principal,
)
from tenants.context import tenant_context
from tenants.errors import PublicError
from tenants.models import Membership, Team, Tenant

Kind = KpiTreeNode.Kind

# Error fields of the services (GraphQL names) → the admin form's fields.
_TARGET_FIELDS = {"kpi": "kpi_key", "value": "value", "scope": "scope_key", "setBy": "set_by"}
_NODE_FIELDS = {
    "kpi": "kpi_key",
    "parentId": "parent",
    "label": "label",
    "kind": "kind",
    "order": "order",
}


def _form_error(error: PublicError, fields: dict[str, str]) -> forms.ValidationError:
    field = fields.get(error.field or "")
    return forms.ValidationError({field: error.message} if field else error.message)


def scope_labels(rows: list[Any]) -> None:
    """Sets `scope_label` on snapshot or target rows: the rep's or team's name, the source.

    Two queries for a page of rows (members, teams), read in the request's tenant.
    """
    keys = {ScopeType.REP: set(), ScopeType.TEAM: set()}
    for row in rows:
        if row.scope_type in keys and row.scope_key.isdigit():
            keys[row.scope_type].add(int(row.scope_key))
    members = {
        str(pk): display or username
        for pk, display, username in Membership.objects.filter(
            pk__in=keys[ScopeType.REP]
        ).values_list("pk", "display_name", "user__username")
    }
    teams = {
        str(pk): name
        for pk, name in Team.objects.filter(pk__in=keys[ScopeType.TEAM]).values_list("pk", "name")
    }
    for row in rows:
        row.scope_label = _scope_label(row, members, teams)


def _scope_label(row: Any, members: dict[str, str], teams: dict[str, str]) -> str:
    if row.scope_type == ScopeType.TENANT:
        return str(_("whole workspace"))
    if row.scope_type == ScopeType.SOURCE:
        return row.scope_key or NO_SOURCE_LABEL
    names = members if row.scope_type == ScopeType.REP else teams
    # A rep or team deleted since keeps its key: say so rather than show a bare number.
    deleted = _("#%(key)s (deleted)") % {"key": row.scope_key}
    return names.get(row.scope_key) or str(deleted)


class ScopeLabelsMixin:
    """Shows a row's scope by name on the changelist and change page (not "5")."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)  # type: ignore[misc]
        scope_labels(list(changelist.result_list))
        return changelist

    @admin.display(description=_("scope"), ordering="scope_key")
    def scope(self, obj: Any) -> str:
        if not hasattr(obj, "scope_label"):
            scope_labels([obj])
        return obj.scope_label


class KpiTargetForm(forms.ModelForm):
    """Validates through the targets service: known KPI, own scope, value rules, period start."""

    request_tenant: Tenant | None = None

    class Meta:
        model = KpiTarget
        # NOTE: foreign keys to tenant-owned rows (set_by) are added by the admin per request:
        # their choices can only be read inside the request's tenant context.
        fields = ["kpi_key", "grain", "period_start", "scope_type", "scope_key", "value"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = (
            self.request_tenant
            or data.get("tenant")
            or (self.instance.tenant if self.instance.tenant_id else None)
        )
        if tenant is None or self.errors:
            return data
        try:
            period = period_containing(
                data["grain"], data["period_start"], tenant.fiscal_year_start_month
            )
            scope = KpiScope(data["scope_type"], data.get("scope_key") or "")
        except (PeriodError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from exc
        if period.start != data["period_start"]:
            raise forms.ValidationError(
                {"period_start": f"The {period.grain} containing it starts on {period.start}."}
            )
        try:
            _, data["value"] = target_services.kpi_target_validate(
                tenant=tenant,
                kpi_key=data["kpi_key"],
                scope=scope,
                value=data["value"],
                set_by=data.get("set_by"),
            )
        except PublicError as error:
            raise _form_error(error, _TARGET_FIELDS) from error
        return data


@admin.register(KpiTarget)
class KpiTargetAdmin(ScopeLabelsMixin, TenantScopedAdmin):
    form = KpiTargetForm
    list_display = [
        "kpi_key",
        "grain",
        "period_start",
        "scope_type",
        "scope",
        "value",
        "set_by",
        "updated_at",
    ]
    list_filter = ["grain", "scope_type", "kpi_key"]
    search_fields = ["kpi_key", "scope_key"]
    readonly_fields = ["updated_at"]
    list_select_related = ["set_by__user"]
    fields = [
        "kpi_key",
        "grain",
        "period_start",
        "scope_type",
        "scope_key",
        "value",
        "set_by",
        "updated_at",
    ]

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if request_principal(request).tenant is None:
            fields.insert(0, "tenant")  # a superuser in all-tenants mode picks the tenant
        return fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = request_principal(request).tenant
        if db_field.name == "set_by" and tenant is not None:
            kwargs["queryset"] = Membership.objects.filter(tenant_id=tenant.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.request_tenant = request_principal(request).tenant
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and obj.set_by_id is None:
            obj.set_by = request_principal(request).membership
        super().save_model(request, obj, form, change)


class KpiTreeNodeForm(forms.ModelForm):
    """Validates a node with the trees service's rules (kinds, one KGI, same tree, no cycle)."""

    tree: KpiTree | None = None

    class Meta:
        model = KpiTreeNode
        fields = ["kind", "kpi_key", "label", "order"]  # the inline adds `parent` per request

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tree = self.tree
        if tree is None or tree.pk is None or self.errors or data.get("DELETE"):
            return data
        try:
            with tenant_context(tree.tenant_id):
                tree_services.kpi_tree_node_validate(
                    tenant=tree.tenant,
                    tree=tree,
                    node=self.instance if self.instance.pk else None,
                    kind=data.get("kind") or "",
                    parent=data.get("parent"),
                    kpi_key=(data.get("kpi_key") or "").strip(),
                    label=(data.get("label") or "").strip(),
                    order=data.get("order"),
                )
        except PublicError as error:
            raise _form_error(error, _NODE_FIELDS) from error
        return data


class KpiTreeNodeFormSet(BaseInlineFormSet):
    def add_fields(self, form: Any, index: int | None) -> None:
        super().add_fields(form, index)
        form.tree = self.instance
        if "parent" in form.fields:
            # Parents only from this tree (and so from its tenant).
            form.fields["parent"].queryset = (
                KpiTreeNode.all_tenants.filter(
                    tenant_id=self.instance.tenant_id, tree_id=self.instance.pk
                )
                if self.instance.pk
                else KpiTreeNode.all_tenants.none()
            )

    def clean(self) -> None:
        super().clean()
        roots = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("kind") == Kind.KGI
        ]
        if len(roots) > 1:
            raise forms.ValidationError("A tree has one KGI.")


class KpiTreeNodeInline(admin.TabularInline):
    model = KpiTreeNode
    form = KpiTreeNodeForm
    formset = KpiTreeNodeFormSet
    fk_name = "tree"
    fields = ["parent", "kind", "kpi_key", "label", "order"]
    extra = 1
    ordering = ["parent_id", "order", "id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_administer(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and can_administer(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_administer(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_administer(request)


@admin.register(KpiTree)
class KpiTreeAdmin(TenantScopedAdmin):
    """Trees and their nodes; a new tree starts empty (add its KGI, then save to add more)."""

    list_display = ["name", "is_default", "created_at"]
    search_fields = ["name"]
    inlines = [KpiTreeNodeInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Nodes belong to the tree's tenant (the tenant field is not on the inline).
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for obj in instances:
            obj.tenant_id = form.instance.tenant_id
            obj.save()
        formset.save_m2m()


class KpiCustomDefinitionForm(forms.ModelForm):
    class Meta:
        model = KpiCustomDefinition
        fields = [
            "tenant",
            "key",
            "name_ja",
            "name_en",
            "category",
            "layer",
            "numerator",
            "denominator",
            "unit",
            "direction",
            "reference_value",
            "reference_source",
            "description",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        key = data.get("key") or ""
        if key and not KEY_PATTERN.match(key):
            self.add_error("key", "2 to 50 lower-case letters, digits or _, from a letter.")
        if key in CATALOGUE_BY_KEY:
            self.add_error("key", "A built-in KPI has this key.")
        if data.get("numerator") and data["numerator"] not in MEASURES:
            self.add_error("numerator", f"Unknown measure; use one of {', '.join(MEASURES)}.")
        if data.get("denominator") and data["denominator"] not in MEASURES:
            self.add_error("denominator", f"Unknown measure; use one of {', '.join(MEASURES)}.")
        return data


@admin.register(KpiCustomDefinition)
class KpiCustomDefinitionAdmin(TenantScopedAdmin):
    form = KpiCustomDefinitionForm
    list_display = ["key", "name_ja", "category", "layer", "numerator", "denominator", "unit"]
    list_filter = ["category", "layer", "unit"]
    search_fields = ["key", "name_ja", "name_en"]


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(ScopeLabelsMixin, ReadOnlyTenantScopedAdmin):
    """Read-only: snapshots are computed from raw rows, never typed in."""

    list_display = [
        "grain",
        "period_start",
        "scope_type",
        "scope",
        "computed_at",
        "calls",
        "leads_created",
        "meetings",
        "opportunities",
        "wins",
        "won_deals",
    ]
    list_filter = ["grain", "scope_type"]
    date_hierarchy = "period_start"

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The change page shows every stored measure, and the scope by name.
        names = [field.name for field in KpiSnapshot._meta.concrete_fields]
        return ["scope", *(name for name in names if name not in ("id", "tenant"))]


class FailedFilter(admin.SimpleListFilter):
    title = _("refresh")
    parameter_name = "failed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("failed")), ("no", _("waiting"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(failed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(failed_at__isnull=True)
        return queryset


@admin.register(DirtyDay)
class DirtyDayAdmin(TenantScopedAdmin):
    """Read-only: the days waiting for a snapshot refresh, and why a failed one failed."""

    list_display = ["day", "marked_at", "failed", "attempts", "error", "failed_at", "retry_at"]
    list_filter = [FailedFilter]
    ordering = ["day"]
    fields = [
        "day",
        "marked_at",
        "rescan",
        "kinds",
        "attempts",
        "failed_at",
        "retry_at",
        "error",
    ]
    readonly_fields = fields

    @admin.display(boolean=True, description=_("failed"))
    def failed(self, obj: DirtyDay) -> bool:
        return obj.failed_at is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
