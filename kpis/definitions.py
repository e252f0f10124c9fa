"""Tenant-defined KPIs: validated combinations of the catalogue's measures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from kpis.catalogue import (
    CATALOGUE_BY_KEY,
    KEY_PATTERN,
    MEASURES,
    Category,
    Direction,
    Layer,
    Unit,
)
from kpis.models import KpiCustomDefinition
from tenants.bounds import shown, text_check
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed, camel_case
from tenants.models import Tenant

# The text fields and their model's maximum lengths (checked before the row is built).
_TEXT_FIELDS = {"name_ja": 100, "name_en": 100, "reference_source": 200, "description": 500}
# KpiCustomDefinition.reference_value is a DecimalField(max_digits=20, decimal_places=4).
_MAX_REFERENCE = Decimal(10) ** 16
FIELDS = (
    "name_ja", "name_en", "category", "layer", "numerator", "denominator", "unit", "direction",
    "reference_value", "reference_source", "description",
)  # fmt: skip


def _choice(value: str, allowed: type, field: str) -> None:
    if value not in {member.value for member in allowed}:
        options = ", ".join(member.value for member in allowed)
        raise ValidationFailed(f"{field} must be one of {options}.", field=field)


def _check_inputs(fields: dict[str, Any]) -> None:
    """Bounds on what a client sent, before anything reads or stores it."""
    for name, value in fields.items():
        if isinstance(value, str):
            text_check(value, field=camel_case(name), max_length=_TEXT_FIELDS.get(name, 50))
    value = fields.get("reference_value")
    if value is not None:
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValidationFailed("The reference value must be a number.", field="referenceValue")
        if abs(value) >= _MAX_REFERENCE or value != value.quantize(Decimal("0.0001")):
            raise PublicError(
                "The reference value must be below 10^16 with at most 4 decimal places.",
                code=ErrorCode.OUT_OF_RANGE,
                field="referenceValue",
            )


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
                f"Unknown measure {shown(measure)}; use one of {', '.join(sorted(MEASURES))}.",
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
    if not KEY_PATTERN.fullmatch(key or ""):
        raise ValidationFailed(
            "A KPI key is 2 to 50 lower-case letters, digits or _, starting with a letter.",
            field="key",
        )
    _check_inputs(fields)
    if key in CATALOGUE_BY_KEY:
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
    _check_inputs(fields)
    row = (
        KpiCustomDefinition.objects.select_for_update().filter(key=key).first()
        if KEY_PATTERN.fullmatch(key)
        else None
    )
    if row is None:
        raise NotFound(f"KPI {shown(key)}", field="key")
    for name, value in fields.items():
        if name not in FIELDS:
            raise ValidationFailed(f"{name} cannot be changed.", field=name)
        setattr(row, name, value)
    _validate(row)
    row.save()
    return row


def kpi_custom_delete(*, tenant: Tenant, key: str) -> None:
    deleted = 0
    if KEY_PATTERN.fullmatch(key):
        deleted, _ = KpiCustomDefinition.objects.filter(key=key).delete()
    if not deleted:
        raise NotFound(f"KPI {shown(key)}", field="key")
