"""The stored snapshot rows of the tenant in context, to compare a refresh with a rebuild."""

from __future__ import annotations

from kpis.models import KpiSnapshot

# Every column but the row's id and when it was computed.
COLUMNS = [f.name for f in KpiSnapshot._meta.concrete_fields if f.name not in {"id", "computed_at"}]


def snapshot_table() -> dict[tuple, tuple]:
    """Every snapshot row by (grain, period start, scope type, scope key)."""
    return {(r[1], r[2], r[4], r[5]): r for r in KpiSnapshot.objects.values_list(*COLUMNS)}


def snapshot_diff(a: dict, b: dict) -> list:
    """The rows of two `snapshot_table`s that differ, each with only its differing columns
    (or whole, when one side has no such row)."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        left, right = a.get(key), b.get(key)
        if left == right:
            continue
        if left is None or right is None:
            out.append((key, left, right))
        else:
            changed = {c: (x, y) for c, x, y in zip(COLUMNS, left, right, strict=True) if x != y}
            out.append((key, changed))
    return out
