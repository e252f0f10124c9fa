"""The lead lifecycle: its stages, their order, and which changes are allowed."""

from __future__ import annotations

from django.db import models


class Stage(models.TextChoices):
    LEAD = "lead", "Lead"
    MQL = "mql", "MQL"
    SQL = "sql", "SQL"
    MEETING = "meeting", "商談設定"
    OPPORTUNITY = "opportunity", "案件化"
    WON = "won", "受注"
    LOST = "lost", "失注"
    RECYCLED = "recycled", "戻し (nurture)"


# The funnel, in order; lost and recycled are side states.
FUNNEL_ORDER: tuple[str, ...] = (
    Stage.LEAD,
    Stage.MQL,
    Stage.SQL,
    Stage.MEETING,
    Stage.OPPORTUNITY,
    Stage.WON,
)

# Forward one step at a time; recycled is the way back (戻し) and re-enters at mql or sql.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.LEAD: frozenset({Stage.MQL, Stage.RECYCLED}),
    Stage.MQL: frozenset({Stage.SQL, Stage.RECYCLED}),
    Stage.SQL: frozenset({Stage.MEETING, Stage.RECYCLED}),
    Stage.MEETING: frozenset({Stage.OPPORTUNITY, Stage.RECYCLED}),
    Stage.OPPORTUNITY: frozenset({Stage.WON, Stage.LOST, Stage.RECYCLED}),
    Stage.LOST: frozenset({Stage.RECYCLED}),
    Stage.RECYCLED: frozenset({Stage.MQL, Stage.SQL}),
    Stage.WON: frozenset(),
}


def is_allowed(from_stage: str, to_stage: str) -> bool:
    return to_stage in ALLOWED_TRANSITIONS.get(from_stage, frozenset())
