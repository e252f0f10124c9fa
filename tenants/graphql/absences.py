"""GraphQL for member absences (leave): list, add and remove; routing skips members on leave."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import strawberry
import strawberry_django
from strawberry import auto, relay
from strawberry_django.relay import DjangoListConnection

from tenants import absences
from tenants.graphql.base import TenantScoped, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.graphql.types import MembershipType
from tenants.models import MemberAbsence, Membership
from tenants.scopes import Scope


@strawberry_django.type(MemberAbsence, name="MemberAbsence")
class MemberAbsenceType(TenantScoped, relay.Node):
    """A member's leave, first and last day included."""

    member: MembershipType
    start_date: auto
    end_date: auto
    note: auto
    created_at: auto


@strawberry.input
class AddMemberAbsenceInput:
    member_id: relay.GlobalID
    start_date: dt.date
    end_date: dt.date = strawberry.field(description="The last day of leave, included.")
    note: str = ""


@strawberry.type
class MemberAbsencePayload(MutationPayload):
    absence: MemberAbsenceType | None = None


@strawberry.type
class RemoveMemberAbsencePayload(MutationPayload):
    removed_id: relay.GlobalID | None = None


@strawberry.type
class AbsenceQuery:
    @query(
        DjangoListConnection[MemberAbsenceType],
        description="Members' absences that end on or after `onOrAfter` (default: all).",
        scope=Scope.RECORDS_READ,
        field=strawberry_django.connection,
    )
    def member_absences(
        self, info: Info, on_or_after: dt.date | None = None
    ) -> Iterable[MemberAbsence]:
        queryset = MemberAbsence.objects.select_related("member", "member__user", "member__team")
        if on_or_after is not None:
            queryset = queryset.filter(end_date__gte=on_or_after)
        return queryset.order_by("start_date", "id")


@strawberry.type
class AbsenceMutation:
    @mutation(
        scope=Scope.CONFIG_WRITE,
        description="Record a member's leave (needs config:write); routing skips them then.",
    )
    def add_member_absence(self, info: Info, input: AddMemberAbsenceInput) -> MemberAbsencePayload:
        tenant = info.context.require_tenant()
        member = resolve_global_id(
            info,
            input.member_id,
            model=Membership,
            type_name="Membership",
            what="Member",
            field="memberId",
        )
        absence = absences.absence_add(
            tenant=tenant,
            member=member,
            start_date=input.start_date,
            end_date=input.end_date,
            note=input.note,
        )
        return MemberAbsencePayload(absence=absence)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE, description="Remove a recorded absence (needs config:write)."
    )
    def remove_member_absence(self, info: Info, id: relay.GlobalID) -> RemoveMemberAbsencePayload:
        tenant = info.context.require_tenant()
        absence = resolve_global_id(
            info, id, model=MemberAbsence, type_name="MemberAbsence", what="Absence", field="id"
        )
        absences.absence_remove(tenant=tenant, absence_id=absence.pk)
        return RemoveMemberAbsencePayload(removed_id=id)
