"""Routing rules: who receives a new MQL or SQL. The `routing` part of a rule version, its
validation, and the pure, deterministic pick (weighted round-robin with skips).

A version's `routing` holds one entry per stage (`mql`, `sql`), each either
`{"strategy": "roundRobin", "teamId": 3, "weights": {"12": 2}, "capacity": {"max": 20,
"period": "week"}}` or `{"strategy": "owner", "ownerId": 7}`. Ids are member and team ids
(a GraphQL global id or its number). The database side (locking the rotation, counting
loads, writing the assignment) is `handoff.assigning`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry import relay

from handoff.validation import register_part_validator
from tenants.errors import ValidationFailed

STAGES = ("mql", "sql")
ROUND_ROBIN = "roundRobin"
OWNER = "owner"
STRATEGIES = (ROUND_ROBIN, OWNER)
CAPACITY_PERIODS = ("day", "week", "month")
MAX_WEIGHT = 100
MAX_WEIGHTED_MEMBERS = 500
MAX_CAPACITY = 100_000

# Why a member in the rotation was passed over.
SKIP_INACTIVE = "inactive"
SKIP_ON_LEAVE = "onLeave"
SKIP_CAPACITY = "capacity"
SKIP_CURRENT_OWNER = "currentOwner"  # a reassignment looks for someone else


def _id(value: Any, *, type_name: str, field: str) -> int:
    """A positive row id from a number or a GraphQL global id of `type_name`."""
    if isinstance(value, bool):
        raise ValidationFailed(f"{field} must be an id.", field=field)
    if isinstance(value, int):
        if value > 0:
            return value
        raise ValidationFailed(f"{field} must be an id.", field=field)
    if isinstance(value, str):
        if value.isdigit() and int(value) > 0:
            return int(value)
        try:
            global_id = relay.GlobalID.from_id(value)
        except ValueError as exc:
            raise ValidationFailed(f"{field} must be an id.", field=field) from exc
        if global_id.type_name == type_name and global_id.node_id.isdigit():
            return int(global_id.node_id)
    raise ValidationFailed(f"{field} must be an id.", field=field)


def _int(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{field} must be a whole number from {low} to {high}.", field=field)
    return value


def _stage_rule(value: Any, *, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{path} must be an object.", field=path)
    unknown = set(value) - {"strategy", "teamId", "weights", "capacity", "ownerId"}
    if unknown:
        raise ValidationFailed(
            f"{path} has unknown keys: {', '.join(sorted(map(str, unknown)))}.", field=path
        )
    strategy = value.get("strategy", ROUND_ROBIN)
    if strategy not in STRATEGIES:
        raise ValidationFailed(
            f"{path}.strategy must be one of {', '.join(STRATEGIES)}.", field=f"{path}.strategy"
        )
    if strategy == OWNER:
        if "ownerId" not in value:
            raise ValidationFailed(f"{path}.ownerId is required.", field=f"{path}.ownerId")
        return {
            "strategy": OWNER,
            "ownerId": _id(value["ownerId"], type_name="Membership", field=f"{path}.ownerId"),
        }
    if "teamId" not in value:
        raise ValidationFailed(f"{path}.teamId is required.", field=f"{path}.teamId")
    rule: dict[str, Any] = {
        "strategy": ROUND_ROBIN,
        "teamId": _id(value["teamId"], type_name="Team", field=f"{path}.teamId"),
    }
    weights = value.get("weights") or {}
    if not isinstance(weights, dict) or len(weights) > MAX_WEIGHTED_MEMBERS:
        raise ValidationFailed(
            f"{path}.weights must map at most {MAX_WEIGHTED_MEMBERS} member ids to weights.",
            field=f"{path}.weights",
        )
    rule["weights"] = {
        str(_id(member, type_name="Membership", field=f"{path}.weights")): _int(
            weight, field=f"{path}.weights.{member}", low=0, high=MAX_WEIGHT
        )
        for member, weight in weights.items()
    }
    capacity = value.get("capacity")
    if capacity is not None:
        if not isinstance(capacity, dict) or set(capacity) - {"max", "period"}:
            raise ValidationFailed(
                f"{path}.capacity must be {{max, period}}.", field=f"{path}.capacity"
            )
        period = capacity.get("period", "week")
        if period not in CAPACITY_PERIODS:
            raise ValidationFailed(
                f"{path}.capacity.period must be one of {', '.join(CAPACITY_PERIODS)}.",
                field=f"{path}.capacity.period",
            )
        rule["capacity"] = {
            "max": _int(
                capacity.get("max"), field=f"{path}.capacity.max", low=1, high=MAX_CAPACITY
            ),
            "period": period,
        }
    return rule


def routing_validate(value: Any) -> dict[str, Any]:
    """The normalised `routing` part, or ValidationFailed naming the bad piece
    (`routing.sql.capacity.max`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("routing must be an object.", field="routing")
    unknown = set(value) - set(STAGES)
    if unknown:
        raise ValidationFailed(
            f"routing has unknown stages: {', '.join(sorted(map(str, unknown)))} "
            f"(allowed: {', '.join(STAGES)}).",
            field="routing",
        )
    return {
        stage: _stage_rule(value[stage], path=f"routing.{stage}")
        for stage in STAGES
        if value.get(stage) is not None
    }


register_part_validator("routing", routing_validate)


# --- The pick ----------------------------------------------------------------------------


def rotation(weights: list[tuple[int, int]]) -> list[int]:
    """The repeating order of a weighted round-robin: each member appears `weight` times,
    spread out (smooth weighted round-robin, ties to the lower member id), so a 2:1 pair
    goes A, B, A rather than A, A, B. Members of weight 0 never appear."""
    weights = [(member, weight) for member, weight in sorted(weights) if weight > 0]
    total = sum(weight for _, weight in weights)
    current = dict.fromkeys((member for member, _ in weights), 0)
    order: list[int] = []
    for _ in range(total):
        for member, weight in weights:
            current[member] += weight
        best = max(current, key=lambda member: (current[member], -member))
        current[best] -= total
        order.append(best)
    return order


@dataclass
class Pick:
    """The outcome of one pick: the member (None when nobody could take it), the rotation
    slot it came from, where the next pick starts, and who was passed over and why."""

    member_id: int | None
    slot: int | None
    next_position: int
    skipped: list[dict[str, Any]] = field(default_factory=list)


def pick_member(
    *,
    order: list[int],
    position: int,
    inactive: set[int],
    on_leave: set[int],
    load: dict[int, int],
    cap: int | None,
    excluded: frozenset[int] | set[int] = frozenset(),
) -> Pick:
    """The next eligible member from `position` in `order`, skipping inactive members,
    members on leave and members at their capacity (`load` ≥ `cap`). Pure and deterministic:
    the same inputs always give the same pick."""
    if not order:
        return Pick(None, None, position)
    skipped: list[dict[str, Any]] = []
    seen: set[int] = set()
    for offset in range(len(order)):
        slot = (position + offset) % len(order)
        member = order[slot]
        reason = (
            SKIP_CURRENT_OWNER
            if member in excluded
            else SKIP_INACTIVE
            if member in inactive
            else SKIP_ON_LEAVE
            if member in on_leave
            else SKIP_CAPACITY
            if cap is not None and load.get(member, 0) >= cap
            else None
        )
        if reason is None:
            return Pick(member, slot, (slot + 1) % len(order), skipped)
        if member not in seen:
            seen.add(member)
            skipped.append({"memberId": member, "reason": reason})
    return Pick(None, None, position % len(order), skipped)
