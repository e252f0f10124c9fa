"""Reads for pipeline data: filtered, ordered lists of leads, activities and deals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db.models import Q, QuerySet

from pipeline.models import Activity, Deal, DealStage, Lead

SEARCH_MAX_LENGTH = 200


def _range(field: str, start: dt.datetime | None, end: dt.datetime | None) -> Q:
    """A half-open range [start, end) on `field`; either bound may be open."""
    condition = Q()
    if start is not None:
        condition &= Q(**{f"{field}__gte": start})
    if end is not None:
        condition &= Q(**{f"{field}__lt": end})
    return condition


def _ordered(queryset: QuerySet, order: Sequence[str] | None) -> QuerySet:
    # Always end on the primary key so pages are stable when the sort key ties.
    if not order:
        return queryset
    tie_breaker = "-id" if order[0].startswith("-") else "id"
    return queryset.order_by(*order, tie_breaker)


def lead_list(
    *,
    stage: str | None = None,
    owner_id: int | None = None,
    team_id: int | None = None,
    source: str | None = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    q: str | None = None,
    order: Sequence[str] | None = None,
) -> QuerySet[Lead]:
    """The tenant-in-context's leads matching every given criterion (newest first)."""
    condition = _range("created_at", created_from, created_to)
    if stage is not None:
        condition &= Q(stage=stage)
    if owner_id is not None:
        condition &= Q(owner_id=owner_id)
    if team_id is not None:
        condition &= Q(team_id=team_id)
    if source is not None:
        condition &= Q(source=source)
    text = (q or "").strip()[:SEARCH_MAX_LENGTH]
    if text:
        condition &= Q(company__icontains=text) | Q(contact_name__icontains=text)
    return _ordered(Lead.objects.filter(condition), order)


def activity_list(
    *,
    type: str | None = None,
    rep_id: int | None = None,
    lead_id: int | None = None,
    occurred_from: dt.datetime | None = None,
    occurred_to: dt.datetime | None = None,
    order: Sequence[str] | None = None,
) -> QuerySet[Activity]:
    """The tenant-in-context's activities matching every given criterion (newest first)."""
    condition = _range("occurred_at", occurred_from, occurred_to)
    if type is not None:
        condition &= Q(type=type)
    if rep_id is not None:
        condition &= Q(rep_id=rep_id)
    if lead_id is not None:
        condition &= Q(lead_id=lead_id)
    return _ordered(Activity.objects.filter(condition), order)


def deal_list(
    *,
    stage_id: int | None = None,
    owner_id: int | None = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    closed_from: dt.datetime | None = None,
    closed_to: dt.datetime | None = None,
    order: Sequence[str] | None = None,
) -> QuerySet[Deal]:
    """The tenant-in-context's deals matching every given criterion (newest first)."""
    condition = _range("created_at", created_from, created_to) & _range(
        "closed_at", closed_from, closed_to
    )
    if stage_id is not None:
        condition &= Q(stage_id=stage_id)
    if owner_id is not None:
        condition &= Q(owner_id=owner_id)
    return _ordered(Deal.objects.filter(condition), order)


def deal_stage_list() -> QuerySet[DealStage]:
    """The tenant-in-context's deal stages, in order."""
    return DealStage.objects.order_by("order")
