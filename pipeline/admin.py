"""Django admin of pipeline data, read-only: leads, activities, deals, deal stages and the
lead and deal stage histories, with search and filters, scoped to the admin's tenant."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from pipeline.imports.models import ImportPreset
from pipeline.imports.presets import PRESETS
from pipeline.models import Activity, Deal, DealStage, DealStageChange, Lead, StageTransition
from tenants.admin_scoping import (
    ReadOnlyTenantScopedAdmin,
    TenantScopedAdmin,
    request_principal,
)
from tenants.models import Membership


def member_label(member: Membership | None) -> str:
    """A member as people know them: their display name, else their username."""
    if member is None:
        return "-"
    return member.display_name or member.user.get_username()


class DealStageFilter(admin.SimpleListFilter):
    """The tenant's deal stages, read in the request's tenant (none without one)."""

    title = _("deal stage")
    parameter_name = "stage"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenant = request_principal(request).tenant
        if tenant is None:
            return []
        stages = DealStage.all_tenants.filter(tenant_id=tenant.pk).order_by("order")
        return [(str(pk), name) for pk, name in stages.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(stage_id=int(value))
        return queryset


@admin.register(Lead)
class LeadAdmin(ReadOnlyTenantScopedAdmin):
    list_display = [
        "company",
        "contact_name",
        "email",
        "stage",
        "source",
        "owner_name",
        "team",
        "created_at",
        "external_id",
    ]
    list_filter = ["stage", "source", "source_system"]
    search_fields = ["external_id", "company", "email", "contact_name"]
    date_hierarchy = "created_at"
    list_select_related = ["owner__user", "team"]

    @admin.display(description=_("owner"), ordering="owner__display_name")
    def owner_name(self, obj: Lead) -> str:
        return member_label(obj.owner)


@admin.register(Activity)
class ActivityAdmin(ReadOnlyTenantScopedAdmin):
    list_display = [
        "occurred_at",
        "type",
        "call_outcome",
        "lead",
        "rep_name",
        "duration_seconds",
        "external_id",
    ]
    list_filter = ["type", "call_outcome", "email_opened", "source_system"]
    search_fields = ["external_id", "lead__company", "lead__email", "lead__external_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["lead", "rep__user"]

    @admin.display(description=_("rep"))
    def rep_name(self, obj: Activity) -> str:
        return member_label(obj.rep)


@admin.register(DealStage)
class DealStageAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["order", "name", "win_probability", "is_won", "is_lost"]
    ordering = ["order"]


@admin.register(Deal)
class DealAdmin(ReadOnlyTenantScopedAdmin):
    list_display = [
        "name",
        "lead",
        "amount",
        "currency",
        "stage",
        "owner_name",
        "created_at",
        "closed_at",
        "external_id",
    ]
    list_filter = [DealStageFilter, "sourced_by_is", "currency", "source_system"]
    search_fields = ["external_id", "name", "lead__company", "lead__email"]
    date_hierarchy = "created_at"
    list_select_related = ["lead", "stage", "owner__user"]

    @admin.display(description=_("owner"))
    def owner_name(self, obj: Deal) -> str:
        return member_label(obj.owner)


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["at", "lead", "from_stage", "to_stage", "owner_name", "actor_label", "reason"]
    list_filter = ["to_stage", "from_stage"]
    search_fields = ["lead__external_id", "lead__company", "lead__email"]
    date_hierarchy = "at"
    list_select_related = ["lead", "owner__user"]
    ordering = ["-at", "-id"]

    @admin.display(description=_("owner"))
    def owner_name(self, obj: StageTransition) -> str:
        return member_label(obj.owner)


@admin.register(DealStageChange)
class DealStageChangeAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["at", "deal", "stage"]
    list_filter = [DealStageFilter]
    search_fields = ["deal__external_id", "deal__name", "deal__lead__company"]
    date_hierarchy = "at"
    list_select_related = ["deal", "stage"]
    ordering = ["-at", "-id"]


class ImportPresetForm(forms.ModelForm):
    """The kind is one of the built-in presets; each mapping is an object of texts."""

    kind = forms.ChoiceField(choices=[(name, name) for name in PRESETS], label=_("kind of export"))

    class Meta:
        model = ImportPreset
        fields = [
            "name",
            "kind",
            "source_system",
            "time_zone",
            "columns",
            "stages",
            "owners",
            "values",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("columns", "stages", "owners"):
            value = data.get(name)
            if value is not None and not (
                isinstance(value, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                self.add_error(name, _('An object of texts, e.g. {"theirs": "ours"}.'))
        preset = PRESETS.get(data.get("kind") or "")
        columns = data.get("columns")
        if preset is not None and isinstance(columns, dict):
            unknown = sorted(
                str(target)
                for target in columns.values()
                if target not in preset.columns and not str(target).startswith("attributes.")
            )
            if unknown:
                self.add_error(
                    "columns",
                    _("Unknown fields %(fields)s; use one of %(known)s or attributes.<key>.")
                    % {"fields": ", ".join(unknown), "known": ", ".join(preset.columns)},
                )
        values = data.get("values")
        if values is not None and not (
            isinstance(values, dict) and all(isinstance(v, dict) for v in values.values())
        ):
            self.add_error("values", _("An object of objects, per field."))
        return data


@admin.register(ImportPreset)
class ImportPresetAdmin(TenantScopedAdmin):
    form = ImportPresetForm
    list_display = ["name", "kind", "source_system", "time_zone", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
