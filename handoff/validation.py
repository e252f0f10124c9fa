"""Validation of a rule version's JSON parts: each part has one registered validator.

This app validates `mqlConditions` and `sqlRequirements` (handoff.conditions,
handoff.requirements); the SLA, return rules and routing register theirs from their own
modules. A validator takes the client's value and returns the normalised value to store,
or raises ValidationFailed whose field is the path of the bad part
(`mqlConditions.conditions[2].days`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenants.errors import ValidationFailed

PartValidator = Callable[[Any], Any]

# The version fields holding JSON parts, as the API spells them.
PARTS: dict[str, str] = {
    "mql_conditions": "mqlConditions",
    "sql_requirements": "sqlRequirements",
    "sla": "sla",
    "return_rules": "returnRules",
    "routing": "routing",
}

_validators: dict[str, PartValidator] = {}


def register_part_validator(part: str, validator: PartValidator) -> PartValidator:
    """Make `validator` the one that checks `part` (a key of PARTS) of every version."""
    if part not in PARTS:
        raise ValueError(f"Unknown rule version part {part!r}.")
    _validators[part] = validator
    return validator


def _free_object(value: Any, *, field: str) -> dict[str, Any]:
    # A part nobody has registered a validator for is still an object, never a list or text.
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object.", field=field)
    return value


def validate_part(part: str, value: Any) -> Any:
    """The normalised value of one part, or ValidationFailed naming the bad piece."""
    validator = _validators.get(part)
    if validator is None:
        return _free_object(value, field=PARTS[part])
    return validator(value)


def validate_parts(parts: dict[str, Any]) -> dict[str, Any]:
    """Each given part (model field name → value) validated and normalised."""
    return {part: validate_part(part, value) for part, value in parts.items()}


def _register_own() -> None:
    # NOTE: imported here, not at the top: the parsers import nothing of this module, and
    # keeping the registry free of them lets other parts register without cycles.
    from handoff.conditions import validate_conditions
    from handoff.requirements import validate_requirements

    register_part_validator("mql_conditions", validate_conditions)
    register_part_validator("sql_requirements", validate_requirements)


_register_own()
