"""Tenant-defined KPIs: validated combinations of the catalogue's measures."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from kpis.catalogue import BUILTIN_BY_KEY, MEASURES, Category, Direction, Layer, Unit
from kpis.models import KpiCustomDefinition
from tenants.errors import ErrorCode, NotFound, ValidationFailed
from tenants.models import Tenant

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,49}$")
FIELDS = (
    "name_ja", "name_en", "category", "layer", "numerator", "denominator", "unit", "direction",
    "reference_value", "reference_source", "description",
)  # fmt: skip


def _choice(value: str, allowed: type, field: str) -> None:
    if value not in {member.value for member in allowed}:
        options = ", ".join(member.value for member in allowed)
        raise ValidationFailed(f"{field} must be one of {options}.", field=field)


def _validate(row: KpiCustomDefinition) -> None:
    if not row.name_ja.strip():
        raise ValidationFailed("A KPI needs a name.", field="nameJa")
    _choice(row.category, Category, "category")
    _choice(row.layer, Layer, "layer")
    _choice(row.unit, Unit, "unit")
    _choice(row.direction, Direction, "direction")
    for field, measure in (("numerator", row.numerator), ("denominator", row.denominator)):
        if measure and measure not in MEASURES:
            raise ValidationFailed(
                f"Unknown measure {measure!r}; use one of {', '.join(sorted(MEASURES))}.",
                field=field,
            )
    if not row.numerator:
        raise ValidationFailed("A KPI needs a numerator measure.", field="numerator")
    if row.unit in (Unit.PERCENT, Unit.RATIO) and not row.denominator:
        raise ValidationFailed("A rate needs a denominator measure.", field="denominator")
    if row.reference_value is not None and not Decimal(row.reference_value).is_finite():
        raise ValidationFailed("The reference value must be a number.", field="referenceValue")


def kpi_custom_create(*, tenant: Tenant, key: str, **fields: Any) -> KpiCustomDefinition:
    """Add a tenant KPI; its key must not clash with a built-in or another of the tenant's."""
    if not KEY_PATTERN.match(key or ""):
        raise ValidationFailed(
            "A KPI key is 2 to 50 lower-case letters, digits or _, starting with a letter.",
            field="key",
        )
    if key in BUILTIN_BY_KEY:
        raise ValidationFailed(f"{key!r} is a built-in KPI.", code=ErrorCode.CONFLICT, field="key")
    row = KpiCustomDefinition(tenant=tenant, key=key, **fields)
    _validate(row)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as exc:
        raise ValidationFailed(
            f"The KPI {key!r} exists already.", code=ErrorCode.CONFLICT, field="key"
        ) from exc
    return row


def kpi_custom_update(*, tenant: Tenant, key: str, **fields: Any) -> KpiCustomDefinition:
    row = KpiCustomDefinition.objects.select_for_update().filter(key=key).first()
    if row is None:
        raise NotFound("KPI", field="key")
    for name, value in fields.items():
        if name not in FIELDS:
            raise ValidationFailed(f"{name} cannot be changed.", field=name)
        setattr(row, name, value)
    _validate(row)
    row.save()
    return row


def kpi_custom_delete(*, tenant: Tenant, key: str) -> None:
    deleted, _ = KpiCustomDefinition.objects.filter(key=key).delete()
    if not deleted:
        raise NotFound("KPI", field="key")
