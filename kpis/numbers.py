"""Exact KPI arithmetic: rates from summed numerators and denominators, shown half-up."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

FOUR_PLACES = Decimal("0.0001")


def ratio(
    numerator: Decimal | int, denominator: Decimal | int, *, multiplier: int = 1
) -> Decimal | None:
    """numerator ÷ denominator x multiplier, exact to 28 digits; None for a zero denominator."""
    if not denominator:
        return None
    return Decimal(numerator) * multiplier / Decimal(denominator)


def shown(value: Decimal | int | None) -> Decimal | None:
    """A value as the API shows it: rounded half up to 4 decimals (money and counts too)."""
    if value is None:
        return None
    return Decimal(value).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
