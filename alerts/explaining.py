"""An alert explanation's sentences, written on read in the reader's language.

Evaluation stores numbers only (`neededPerRemainingDay`, `remainingWorkingDays`, the KPI's key,
names and unit); words are produced here, so a Japanese reader never sees English stored text
and rows written before this (which carry an English `summary`) read the same way.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from alerts.models import AlertKind

LANGUAGES = ("ja", "en")


def _needed(value: Decimal, unit: str | None, currency: str) -> str:
    if unit == "money":
        amount = f"{value.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
        return f"{amount} {currency}".strip()
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def pace_summary(explanation: dict[str, Any], language: str, *, currency: str = "") -> str | None:
    """What each remaining working day needs ("10.1 more meetings set a day" /
    "商談設定数を1日あたりあと10.1"), or None when the alert is not a pace alert short of its
    target. Any stored `summary` text is ignored: it is rebuilt from the numbers."""
    if explanation.get("kind", AlertKind.BEHIND_PACE) != AlertKind.BEHIND_PACE:
        return None
    raw = explanation.get("neededPerRemainingDay")
    if raw is None:
        return None
    try:
        needed = Decimal(str(raw))
    except InvalidOperation:
        return None
    key = explanation.get("kpi") or ""
    amount = _needed(needed, explanation.get("unit"), currency)
    if language == "ja":
        name = explanation.get("kpiName") or explanation.get("kpiNameEn") or key
        return f"{name}を1日あたりあと{amount}"
    name = (explanation.get("kpiNameEn") or key).lower()
    return f"{amount} more {name} a day"
