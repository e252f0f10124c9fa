"""GraphQL mutations of tenant-defined KPIs (built from the catalogue's measures)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry

from kpis import definitions, selectors
from kpis.catalogue import Direction, Unit
from kpis.graphql.types import KpiDefinitionType
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.scopes import Scope


@strawberry.input(description="A KPI of the workspace's own, from the catalogue's measures.")
class CreateKpiInput:
    key: str = strawberry.field(description="Lower-case letters, digits and _; not a built-in.")
    name_ja: str
    category: str = strawberry.field(description="activity, outcome, kgi or marketing.")
    layer: str = strawberry.field(description="volume, quality or result.")
    numerator: str = strawberry.field(description="A measure key (see the catalogue).")
    denominator: str | None = None
    unit: str = Unit.COUNT.value
    direction: str = Direction.HIGHER_IS_BETTER.value
    name_en: str = ""
    reference_value: Decimal | None = None
    reference_source: str = ""
    description: str = ""


@strawberry.input(description="Only the fields sent are changed.")
class UpdateKpiInput:
    key: str
    name_ja: str | None = strawberry.UNSET
    name_en: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    layer: str | None = strawberry.UNSET
    numerator: str | None = strawberry.UNSET
    denominator: str | None = strawberry.UNSET
    unit: str | None = strawberry.UNSET
    direction: str | None = strawberry.UNSET
    reference_value: Decimal | None = strawberry.UNSET
    reference_source: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


@strawberry.type
class KpiPayload(MutationPayload):
    kpi: KpiDefinitionType | None = None


@strawberry.type
class DeleteKpiPayload(MutationPayload):
    deleted_key: str | None = None


_NULLABLE = {"reference_value"}


def _payload(tenant: Any, key: str) -> KpiPayload:
    return KpiPayload(
        kpi=KpiDefinitionType.from_definition(selectors.kpi_definition(tenant=tenant, key=key))
    )


@strawberry.type
class KpiMutation:
    @mutation(scope=Scope.KPIS_WRITE, description="Define a KPI of the workspace's own.")
    def create_kpi(self, info: Info, input: CreateKpiInput) -> KpiPayload:
        tenant = info.context.require_tenant()
        fields = {
            name: getattr(input, name)
            for name in definitions.FIELDS
            if getattr(input, name) is not None or name in _NULLABLE
        }
        fields["denominator"] = input.denominator or ""
        row = definitions.kpi_custom_create(tenant=tenant, key=input.key, **fields)
        return _payload(tenant, row.key)

    @mutation(scope=Scope.KPIS_WRITE, description="Change a KPI of the workspace's own.")
    def update_kpi(self, info: Info, input: UpdateKpiInput) -> KpiPayload:
        tenant = info.context.require_tenant()
        fields: dict[str, Any] = {}
        for name in definitions.FIELDS:
            value = getattr(input, name)
            if value is strawberry.UNSET:
                continue
            if value is None and name not in _NULLABLE:
                value = ""
            fields[name] = value
        row = definitions.kpi_custom_update(tenant=tenant, key=input.key, **fields)
        return _payload(tenant, row.key)

    @mutation(scope=Scope.KPIS_WRITE, description="Delete a KPI of the workspace's own.")
    def delete_kpi(self, info: Info, key: str) -> DeleteKpiPayload:
        tenant = info.context.require_tenant()
        definitions.kpi_custom_delete(tenant=tenant, key=key)
        return DeleteKpiPayload(deleted_key=key)
