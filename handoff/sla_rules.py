"""The `sla` and `return_rules` parts of a rule version, their validation, and the exact
SLA definitions in business hours (met, breached, still open).

`sla`: `{"speedToLeadHours": 1, "acceptHours": 8, "steps": [{"atPercent": 50, "action":
"remindOwner"}, {"atPercent": 100, "action": "notifyManager"}, {"atPercent": 150, "action":
"reassign"}]}`. `return_rules`: `{"meetingWithinDays": 14, "reasons": ["noBudget", ...]}`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from handoff.validation import register_part_validator
from tenants.bounds import has_control_characters
from tenants.business_hours import BusinessHours
from tenants.errors import ValidationFailed

MAX_SLA_HOURS = 720
MAX_STEPS = 10
MAX_STEP_PERCENT = 300
MAX_RETURN_DAYS = 365
MAX_REASONS = 50
REASON_MAX = 100

REMIND_OWNER = "remindOwner"
NOTIFY_MANAGER = "notifyManager"
REASSIGN = "reassign"
ACTIONS = (REMIND_OWNER, NOTIFY_MANAGER, REASSIGN)


class SlaStatus(StrEnum):
    MET = "met"
    BREACHED = "breached"
    OPEN = "open"


def _int(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{field} must be a whole number from {low} to {high}.", field=field)
    return value


def sla_validate(value: Any) -> dict[str, Any]:
    """The normalised `sla` part (steps sorted by their percentage), or ValidationFailed
    naming the bad piece (`sla.steps[1].action`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("sla must be an object.", field="sla")
    unknown = set(value) - {"speedToLeadHours", "acceptHours", "steps"}
    if unknown:
        raise ValidationFailed(
            f"sla has unknown keys: {', '.join(sorted(map(str, unknown)))}.", field="sla"
        )
    sla: dict[str, Any] = {}
    for key in ("speedToLeadHours", "acceptHours"):
        if value.get(key) is not None:
            sla[key] = _int(value[key], field=f"sla.{key}", low=1, high=MAX_SLA_HOURS)
    steps = value.get("steps") or []
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        raise ValidationFailed(
            f"sla.steps must be a list of at most {MAX_STEPS}.", field="sla.steps"
        )
    if steps and "acceptHours" not in sla:
        raise ValidationFailed(
            "Reminder and escalation steps need sla.acceptHours.", field="sla.acceptHours"
        )
    normalised = []
    for index, step in enumerate(steps):
        path = f"sla.steps[{index}]"
        if not isinstance(step, dict) or set(step) - {"atPercent", "action"}:
            raise ValidationFailed(f"{path} must be {{atPercent, action}}.", field=path)
        if step.get("action") not in ACTIONS:
            raise ValidationFailed(
                f"{path}.action must be one of {', '.join(ACTIONS)}.", field=f"{path}.action"
            )
        normalised.append(
            {
                "atPercent": _int(
                    step.get("atPercent"), field=f"{path}.atPercent", low=1, high=MAX_STEP_PERCENT
                ),
                "action": step["action"],
            }
        )
    percents = [step["atPercent"] for step in normalised]
    if len(set(percents)) != len(percents):
        raise ValidationFailed("Two steps cannot share one atPercent.", field="sla.steps")
    if normalised:
        sla["steps"] = sorted(normalised, key=lambda step: step["atPercent"])
    return sla


def return_rules_validate(value: Any) -> dict[str, Any]:
    """The normalised `return_rules` part, or ValidationFailed naming the bad piece."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("returnRules must be an object.", field="returnRules")
    unknown = set(value) - {"meetingWithinDays", "reasons"}
    if unknown:
        raise ValidationFailed(
            f"returnRules has unknown keys: {', '.join(sorted(map(str, unknown)))}.",
            field="returnRules",
        )
    rules: dict[str, Any] = {}
    if value.get("meetingWithinDays") is not None:
        rules["meetingWithinDays"] = _int(
            value["meetingWithinDays"],
            field="returnRules.meetingWithinDays",
            low=1,
            high=MAX_RETURN_DAYS,
        )
    reasons = value.get("reasons") or []
    if not isinstance(reasons, list) or len(reasons) > MAX_REASONS:
        raise ValidationFailed(
            f"returnRules.reasons must be a list of at most {MAX_REASONS}.",
            field="returnRules.reasons",
        )
    cleaned: list[str] = []
    for index, reason in enumerate(reasons):
        path = f"returnRules.reasons[{index}]"
        if (
            not isinstance(reason, str)
            or not reason.strip()
            or len(reason) > REASON_MAX
            or has_control_characters(reason)
        ):
            raise ValidationFailed(
                f"{path} must be a text of 1 to {REASON_MAX} characters without control "
                "characters.",
                field=path,
            )
        if reason.strip() in cleaned:
            raise ValidationFailed(f"{path} repeats {reason.strip()!r}.", field=path)
        cleaned.append(reason.strip())
    if cleaned:
        rules["reasons"] = cleaned
    return rules


register_part_validator("sla", sla_validate)
register_part_validator("return_rules", return_rules_validate)


# --- Exact definitions ---------------------------------------------------------------------


def sla_status(
    *,
    start: dt.datetime,
    done_at: dt.datetime | None,
    now: dt.datetime,
    hours: int,
    calendar: BusinessHours,
) -> SlaStatus:
    """An SLA of `hours` business hours from `start`: met when done within them (N itself
    included), breached when done later or once more than N business hours have passed
    undone (a window running out at Friday 18:00 turns breached at Monday 09:00), else open.
    A breach never turns back into met: a late `done_at` stays breached."""
    limit = dt.timedelta(hours=hours)
    if done_at is not None and done_at <= now:
        return SlaStatus.MET if calendar.between(start, done_at) <= limit else SlaStatus.BREACHED
    return SlaStatus.BREACHED if calendar.between(start, now) > limit else SlaStatus.OPEN


def business_time_left(
    *, start: dt.datetime, now: dt.datetime, hours: int, calendar: BusinessHours
) -> dt.timedelta:
    """N business hours minus those elapsed since `start` (negative once breached)."""
    return dt.timedelta(hours=hours) - calendar.between(start, now)


def percent_elapsed(
    *, start: dt.datetime, now: dt.datetime, hours: int, calendar: BusinessHours
) -> float:
    """How much of the SLA window has elapsed, in % of its business hours."""
    return calendar.between(start, now) / dt.timedelta(hours=hours) * 100
