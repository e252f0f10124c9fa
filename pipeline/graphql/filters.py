"""Filter and ordering inputs of the pipeline lists, turned into selector criteria."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from django.db.models import Model
from django.utils import timezone
from strawberry import relay

from pipeline.graphql.types import ActivityKind, LeadStage
from pipeline.models import DealStage, Lead
from tenants.errors import NotFound, ValidationFailed
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.models import Membership, Team


class NoMatch(Exception):
    """A filter names an object the request cannot see: the list is empty, nothing leaks."""


def _pk(info: Info, global_id: relay.GlobalID | None, model: type[Model], type_name: str) -> Any:
    if global_id is None:
        return None
    try:
        return resolve_global_id(info, global_id, model=model, type_name=type_name).pk
    except NotFound as exc:
        raise NoMatch from exc


def _bound(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        raise ValidationFailed("The time must include a UTC offset.", field=field)
    return value


@strawberry.input(description="A half-open time range: from <= t < to; either end may be open.")
class DateTimeRange:
    start: dt.datetime | None = strawberry.field(default=None, name="from")
    end: dt.datetime | None = strawberry.field(default=None, name="to")


def _range(value: DateTimeRange | None, field: str) -> tuple[dt.datetime | None, ...]:
    if value is None:
        return (None, None)
    return (_bound(value.start, f"{field}.from"), _bound(value.end, f"{field}.to"))


@strawberry.enum(description="Sort direction.")
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


def _order(field: str, direction: SortDirection) -> list[str]:
    return [field if direction == SortDirection.ASC else f"-{field}"]


@strawberry.input
class LeadFilter:
    stage: LeadStage | None = None  # type: ignore[valid-type]
    owner_id: relay.GlobalID | None = None
    team_id: relay.GlobalID | None = None
    source: str | None = None
    created_at: DateTimeRange | None = None
    q: str | None = strawberry.field(
        default=None, description="Text in the company or contact name (case-insensitive)."
    )

    def criteria(self, info: Info) -> dict[str, Any]:
        created_from, created_to = _range(self.created_at, "createdAt")
        return {
            "stage": self.stage.value if self.stage is not None else None,
            "owner_id": _pk(info, self.owner_id, Membership, "Membership"),
            "team_id": _pk(info, self.team_id, Team, "Team"),
            "source": self.source,
            "created_from": created_from,
            "created_to": created_to,
            "q": self.q,
        }


@strawberry.enum
class LeadOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    COMPANY = "company"
    SCORE = "score"


@strawberry.input
class LeadOrder:
    field: LeadOrderField
    direction: SortDirection = SortDirection.DESC

    def criteria(self) -> list[str]:
        return _order(self.field.value, self.direction)


@strawberry.input
class ActivityFilter:
    type: ActivityKind | None = None  # type: ignore[valid-type]
    rep_id: relay.GlobalID | None = None
    lead_id: relay.GlobalID | None = None
    occurred_at: DateTimeRange | None = None

    def criteria(self, info: Info) -> dict[str, Any]:
        occurred_from, occurred_to = _range(self.occurred_at, "occurredAt")
        return {
            "type": self.type.value if self.type is not None else None,
            "rep_id": _pk(info, self.rep_id, Membership, "Membership"),
            "lead_id": _pk(info, self.lead_id, Lead, "Lead"),
            "occurred_from": occurred_from,
            "occurred_to": occurred_to,
        }


@strawberry.enum
class ActivityOrderField(Enum):
    OCCURRED_AT = "occurred_at"


@strawberry.input
class ActivityOrder:
    field: ActivityOrderField
    direction: SortDirection = SortDirection.DESC

    def criteria(self) -> list[str]:
        return _order(self.field.value, self.direction)


@strawberry.input
class DealFilter:
    stage_id: relay.GlobalID | None = None
    owner_id: relay.GlobalID | None = None
    created_at: DateTimeRange | None = None
    closed_at: DateTimeRange | None = None

    def criteria(self, info: Info) -> dict[str, Any]:
        created_from, created_to = _range(self.created_at, "createdAt")
        closed_from, closed_to = _range(self.closed_at, "closedAt")
        return {
            "stage_id": _pk(info, self.stage_id, DealStage, "DealStage"),
            "owner_id": _pk(info, self.owner_id, Membership, "Membership"),
            "created_from": created_from,
            "created_to": created_to,
            "closed_from": closed_from,
            "closed_to": closed_to,
        }


@strawberry.enum
class DealOrderField(Enum):
    CREATED_AT = "created_at"
    CLOSED_AT = "closed_at"
    AMOUNT = "amount"


@strawberry.input
class DealOrder:
    field: DealOrderField
    direction: SortDirection = SortDirection.DESC

    def criteria(self) -> list[str]:
        return _order(self.field.value, self.direction)
