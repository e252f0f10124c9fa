"""Member absences (leave): recorded per member and day range; routing skips a member on
leave on the day it assigns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from tenants.bounds import day_check, text_check
from tenants.context import tenant_context
from tenants.errors import NotFound, ValidationFailed
from tenants.models import MemberAbsence, Membership, Tenant

ABSENCE_NOTE_MAX = 200
# Longer leave is entered as several absences; the bound keeps a typo (year 2062) visible.
ABSENCE_MAX_DAYS = 366


def absence_add(
    *,
    tenant: Tenant,
    member: Membership,
    start_date: dt.date,
    end_date: dt.date,
    note: str = "",
) -> MemberAbsence:
    """Record a member's leave from `start_date` to `end_date`, both included."""
    day_check(start_date, field="startDate")
    day_check(end_date, field="endDate")
    text_check(note, field="note", max_length=ABSENCE_NOTE_MAX, what="a note")
    if end_date < start_date:
        raise ValidationFailed("An absence cannot end before it starts.", field="endDate")
    if (end_date - start_date).days >= ABSENCE_MAX_DAYS:
        raise ValidationFailed(
            f"An absence lasts at most {ABSENCE_MAX_DAYS} days.", field="endDate"
        )
    with tenant_context(tenant):
        if member.tenant_id != tenant.pk:
            raise NotFound("Member", field="memberId")
        return MemberAbsence.objects.create(
            tenant=tenant,
            member=member,
            start_date=start_date,
            end_date=end_date,
            note=note.strip(),
        )


def absence_remove(*, tenant: Tenant, absence_id: int) -> None:
    with tenant_context(tenant):
        deleted, _ = MemberAbsence.objects.filter(pk=absence_id).delete()
    if not deleted:
        raise NotFound("Absence", field="id")


def members_on_leave(*, tenant: Tenant, day: dt.date, member_ids: Iterable[int]) -> set[int]:
    """Which of `member_ids` are on leave on `day` (one query)."""
    with tenant_context(tenant):
        return set(
            MemberAbsence.objects.filter(
                member_id__in=list(member_ids), start_date__lte=day, end_date__gte=day
            ).values_list("member_id", flat=True)
        )
