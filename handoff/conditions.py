"""MQL conditions as data: their JSON schema, its validation, and the parsed condition tree.

The schema is documented in docs/handoff.md. Validation names the bad part by its path
(`mqlConditions.conditions[2].days`) and never evaluates code: the tree is compiled to
database expressions by handoff.evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tenants.bounds import has_control_characters, shown
from tenants.errors import ValidationFailed

ROOT = "mqlConditions"
MAX_DEPTH = 3  # groups within groups: enough for "A and (B or (C and D))"
MAX_CONDITIONS = 30  # leaves in one tree
MAX_LIST = 100  # values of one `in`
MAX_TEXT = 200
MAX_DAYS = 365
MAX_COUNT = 1000
MAX_POINTS = 1000
MAX_EMPLOYEES = 10_000_000
# An attributes key: letters, digits, `_` and `-`, as partner systems name custom fields;
# never "__", which the ORM would read as a path into the JSON.
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]|_(?!_)){0,63}$")

# The activity behaviours a window counts, as pipeline.models.Activity records them.
ACTIVITY_KINDS: tuple[str, ...] = (
    "email",
    "emailOpened",
    "emailClicked",
    "call",
    "connectedCall",
    "meeting",
)
MODES = ("all", "any", "score")


@dataclass(frozen=True)
class Leaf:
    """One condition on a lead: `kind` with its parameters, `path` naming it for reasons."""

    path: str
    kind: str
    params: dict[str, Any]
    points: int | None = None


@dataclass(frozen=True)
class Group:
    """`all` or `any` of its conditions (groups nest up to MAX_DEPTH)."""

    path: str
    combinator: str
    children: tuple[Leaf | Group, ...]
    points: int | None = None


@dataclass(frozen=True)
class ConditionTree:
    """A parsed, valid mqlConditions: the root group, or a score over its conditions."""

    mode: str
    children: tuple[Leaf | Group, ...]
    threshold: int | None = None
    leaves: tuple[Leaf, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not self.children


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", field=path)


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object.")
    return value


def _keys(node: dict[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", "is not a known key here.")


def _int(node: dict[str, Any], key: str, path: str, *, low: int, high: int) -> int:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{path}.{key}", "must be a whole number.")
    if not low <= value <= high:
        raise _fail(f"{path}.{key}", f"must be {low} to {high}.")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "must be a non-empty text.")
    if len(value) > MAX_TEXT:
        raise _fail(path, f"has at most {MAX_TEXT} characters.")
    if has_control_characters(value):
        raise _fail(path, "cannot contain NUL or other control characters.")
    return value


def _scalar(value: Any, path: str) -> str | int | float | bool:
    if isinstance(value, str):
        return _text(value, path)
    if isinstance(value, bool | int | float):
        return value
    raise _fail(path, "must be a text, a number or true/false.")


def _list(node: dict[str, Any], key: str, path: str, *, texts: bool) -> list[Any]:
    values = node.get(key)
    if not isinstance(values, list) or not values:
        raise _fail(f"{path}.{key}", "must be a non-empty list.")
    if len(values) > MAX_LIST:
        raise _fail(f"{path}.{key}", f"has at most {MAX_LIST} values.")
    check = _text if texts else _scalar
    return [check(v, f"{path}.{key}[{i}]") for i, v in enumerate(values)]


def _employee_count(node: dict[str, Any], path: str) -> dict[str, Any]:
    op = node.get("op")
    if op in ("gte", "lte"):
        _keys(node, path, {"kind", "op", "value", "points"})
        return {"op": op, "value": _int(node, "value", path, low=0, high=MAX_EMPLOYEES)}
    if op == "between":
        _keys(node, path, {"kind", "op", "min", "max", "points"})
        low = _int(node, "min", path, low=0, high=MAX_EMPLOYEES)
        high = _int(node, "max", path, low=0, high=MAX_EMPLOYEES)
        if high < low:
            raise _fail(f"{path}.max", "must be at least min.")
        return {"op": op, "min": low, "max": high}
    raise _fail(f"{path}.op", "must be one of gte, lte, between.")


def _attribute(node: dict[str, Any], path: str) -> dict[str, Any]:
    key = node.get("key")
    if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
        raise _fail(
            f"{path}.key", "must be 1-64 letters, digits, '_' or '-', starting with a letter."
        )
    op = node.get("op")
    if op == "exists":
        _keys(node, path, {"kind", "key", "op", "points"})
        return {"key": key, "op": op}
    if op == "equals":
        _keys(node, path, {"kind", "key", "op", "value", "points"})
        if "value" not in node:
            raise _fail(f"{path}.value", "is required.")
        return {"key": key, "op": op, "value": _scalar(node["value"], f"{path}.value")}
    if op == "in":
        _keys(node, path, {"kind", "key", "op", "values", "points"})
        return {"key": key, "op": op, "values": _list(node, "values", path, texts=False)}
    raise _fail(f"{path}.op", "must be one of equals, in, exists.")


def _activity(node: dict[str, Any], path: str) -> dict[str, Any]:
    _keys(node, path, {"kind", "activity", "days", "atLeast", "points"})
    activity = node.get("activity")
    if activity not in ACTIVITY_KINDS:
        raise _fail(f"{path}.activity", f"must be one of {', '.join(ACTIVITY_KINDS)}.")
    return {
        "activity": activity,
        "days": _int(node, "days", path, low=1, high=MAX_DAYS),
        "at_least": _int(node, "atLeast", path, low=1, high=MAX_COUNT),
    }


def _leaf_params(kind: str, node: dict[str, Any], path: str) -> dict[str, Any]:
    if kind == "employeeCount":
        return _employee_count(node, path)
    if kind in ("industry", "source"):
        _keys(node, path, {"kind", "values", "points"})
        return {"values": _list(node, "values", path, texts=True)}
    if kind == "titleContains":
        _keys(node, path, {"kind", "value", "points"})
        return {"value": _text(node.get("value"), f"{path}.value")}
    if kind == "attribute":
        return _attribute(node, path)
    return _activity(node, path)


LEAF_KINDS = ("employeeCount", "industry", "source", "titleContains", "attribute", "activity")


class _Parser:
    def __init__(self, *, scored: bool) -> None:
        self.scored = scored
        self.leaves: list[Leaf] = []

    def points(self, node: dict[str, Any], path: str, *, top: bool) -> int | None:
        if self.scored and top:
            return _int(node, "points", path, low=-MAX_POINTS, high=MAX_POINTS)
        if "points" in node:
            raise _fail(f"{path}.points", "is only for the top-level conditions of a score.")
        return None

    def children(self, value: Any, path: str, depth: int) -> tuple[Leaf | Group, ...]:
        if not isinstance(value, list):
            raise _fail(path, "must be a list.")
        if depth > 0 and not value:
            raise _fail(path, "must not be empty.")
        return tuple(self.node(item, f"{path}[{i}]", depth) for i, item in enumerate(value))

    def node(self, value: Any, path: str, depth: int) -> Leaf | Group:
        node = _object(value, path)
        kind = node.get("kind")
        top = depth == 0
        if kind in ("all", "any"):
            if depth + 1 >= MAX_DEPTH:
                raise _fail(path, f"groups nest at most {MAX_DEPTH} levels deep.")
            _keys(node, path, {"kind", "conditions", "points"})
            points = self.points(node, path, top=top)
            children = self.children(node.get("conditions"), f"{path}.conditions", depth + 1)
            return Group(path=path, combinator=kind, children=children, points=points)
        if kind not in LEAF_KINDS:
            raise _fail(f"{path}.kind", f"must be one of all, any, {', '.join(LEAF_KINDS)}.")
        points = self.points(node, path, top=top)
        leaf = Leaf(path=path, kind=kind, params=_leaf_params(kind, node, path), points=points)
        self.leaves.append(leaf)
        if len(self.leaves) > MAX_CONDITIONS:
            raise _fail(path, f"a rule has at most {MAX_CONDITIONS} conditions.")
        return leaf


def parse_conditions(value: Any) -> ConditionTree:
    """The condition tree of a stored or submitted mqlConditions, or ValidationFailed whose
    field is the path of the first bad part. `{}` is an empty tree that qualifies nobody."""
    node = _object(value, ROOT)
    if not node:
        return ConditionTree(mode="all", children=())
    _keys(node, ROOT, {"mode", "conditions", "threshold"})
    mode = node.get("mode", "all")
    if mode not in MODES:
        raise _fail(f"{ROOT}.mode", "must be one of all, any, score.")
    parser = _Parser(scored=mode == "score")
    children = parser.children(node.get("conditions"), f"{ROOT}.conditions", 0)
    if not children:
        raise _fail(f"{ROOT}.conditions", "must not be empty.")
    threshold = None
    if mode == "score":
        threshold = _int(node, "threshold", ROOT, low=-MAX_POINTS * MAX_CONDITIONS, high=10**6)
    elif "threshold" in node:
        raise _fail(f"{ROOT}.threshold", "is only for mode score.")
    return ConditionTree(
        mode=mode, children=children, threshold=threshold, leaves=tuple(parser.leaves)
    )


def validate_conditions(value: Any) -> dict[str, Any]:
    """The mqlConditions part's validator: the value itself once it parses."""
    parse_conditions(value)
    return value


def describe(leaf: Leaf) -> str:
    """A short reason a person reads in a qualification (`emailClicked >= 2 in 14 days`)."""
    p = leaf.params
    if leaf.kind == "employeeCount":
        if p["op"] == "between":
            return f"employeeCount {p['min']}..{p['max']}"
        return f"employeeCount {'>=' if p['op'] == 'gte' else '<='} {p['value']}"
    if leaf.kind in ("industry", "source"):
        return f"{leaf.kind} in {', '.join(shown(str(v), 30) for v in p['values'][:5])}"
    if leaf.kind == "titleContains":
        return f"title contains {shown(p['value'], 30)}"
    if leaf.kind == "attribute":
        if p["op"] == "exists":
            return f"attributes.{p['key']} exists"
        if p["op"] == "equals":
            return f"attributes.{p['key']} = {shown(str(p['value']), 30)}"
        return f"attributes.{p['key']} in list"
    return f"{p['activity']} >= {p['at_least']} in {p['days']} days"
