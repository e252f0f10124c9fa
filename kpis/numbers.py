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


# ISO 4217 currencies whose minor unit is not 1/100 (all others have 2 decimals).
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_CURRENCY_DECIMALS: dict[str, int] = {
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
# Decimals a rate is displayed with (percent as 33.3, a ratio as 1.50).
_DISPLAY_DECIMALS = {"percent": 1, "ratio": 2, "count": 0}


def currency_decimals(currency: str) -> int:
    """The decimals of the currency's minor unit: JPY 0, USD 2, KWD 3 (2 for unknown codes)."""
    return _CURRENCY_DECIMALS.get(currency.upper(), 2)


def _half_up(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def display_decimals(unit: str, currency: str) -> int:
    """How many decimals a value of `unit` is displayed with (money: the currency's)."""
    if unit == "money":
        return currency_decimals(currency)
    return _DISPLAY_DECIMALS.get(unit, 4)


def displayed(value: Decimal | None, *, unit: str, currency: str) -> str | None:
    """The exact value rounded half up for display: a count as an integer, money at the
    currency's minor unit, a percent to 1 decimal, a ratio to 2; None stays None."""
    if value is None:
        return None
    rounded = _half_up(Decimal(value), display_decimals(unit, currency))
    # "-0" after rounding -0.4 reads as 0 on a screen.
    return str(rounded.copy_abs() if rounded == 0 else rounded)


def as_int(value: Decimal | None) -> int | None:
    """The exact value rounded half up to an integer (a count as one)."""
    return None if value is None else int(_half_up(Decimal(value), 0))


def minor_units(value: Decimal | None, *, currency: str) -> int | None:
    """An amount in the currency's minor unit, rounded half up: 12.345 USD is 1235 cents,
    1234.5 JPY is 1235 yen."""
    if value is None:
        return None
    return int(_half_up(Decimal(value).scaleb(currency_decimals(currency)), 0))
