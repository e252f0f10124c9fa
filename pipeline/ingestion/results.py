"""What one batch did: row kinds, per-kind counts, row errors and their codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class IngestKind(StrEnum):
    LEAD = "lead"
    ACTIVITY = "activity"
    DEAL = "deal"
    LEAD_STAGE_CHANGE = "lead_stage_change"
    DEAL_STAGE_CHANGE = "deal_stage_change"


# The batch key of each kind's rows; a row error's index is its position in that list.
BATCH_KEYS: dict[IngestKind, str] = {
    IngestKind.LEAD: "leads",
    IngestKind.ACTIVITY: "activities",
    IngestKind.DEAL: "deals",
    IngestKind.LEAD_STAGE_CHANGE: "lead_stage_changes",
    IngestKind.DEAL_STAGE_CHANGE: "deal_stage_changes",
}


class RowErrorCode(StrEnum):
    REQUIRED = "REQUIRED"
    INVALID = "INVALID"
    INVALID_CHOICE = "INVALID_CHOICE"
    TOO_LONG = "TOO_LONG"
    NEGATIVE = "NEGATIVE"
    INVALID_DATETIME = "INVALID_DATETIME"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NAIVE_DATETIME = "NAIVE_DATETIME"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    DUPLICATE = "DUPLICATE"
    INVALID_TRANSITION = "INVALID_TRANSITION"


@dataclass(frozen=True)
class RowError:
    """Why one row of a batch was not stored; `field` is the client's (camelCase) name."""

    kind: IngestKind
    index: int
    field: str | None
    code: RowErrorCode
    message: str


@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    withdrawn: int = 0  # stage changes a partner took back


_KIND_ORDER = {kind: position for position, kind in enumerate(IngestKind)}


@dataclass
class IngestResult:
    """Per-kind counts and the row errors of one batch (`replayed` for an idempotent retry)."""

    counts: dict[IngestKind, KindCounts] = field(
        default_factory=lambda: {kind: KindCounts() for kind in IngestKind}
    )
    row_errors: list[RowError] = field(default_factory=list)
    replayed: bool = False

    def sort_errors(self) -> None:
        """Errors by kind, then row; a row's own errors keep the order they were found in."""
        self.row_errors.sort(key=lambda error: (_KIND_ORDER[error.kind], error.index))

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {kind.value: asdict(counts) for kind, counts in self.counts.items()},
            "row_errors": [asdict(error) for error in self.row_errors],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> IngestResult:
        return cls(
            counts={IngestKind(k): KindCounts(**v) for k, v in data["counts"].items()},
            row_errors=[
                RowError(
                    kind=IngestKind(e["kind"]),
                    index=e["index"],
                    field=e["field"],
                    code=RowErrorCode(e["code"]),
                    message=e["message"],
                )
                for e in data["row_errors"]
            ],
            replayed=replayed,
        )
