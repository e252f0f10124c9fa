"""Assigning a lead that became MQL or SQL: the version's routing rule applied against the
database (rotation position locked and advanced, loads counted, members on leave read),
the assignment recorded with its reasons, and the lead's owner set through pipeline."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from handoff.audit import audit_record
from handoff.models import Assignment, RotationState, RuleVersion
from handoff.routing import OWNER, ROUND_ROBIN, Pick, pick_member, rotation
from kpis.periods import local_date
from pipeline.models import Lead
from pipeline.services import lead_update
from tenants.absences import members_on_leave
from tenants.context import tenant_context
from tenants.errors import NotFound
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

# Who a round-robin hands leads to: the people who work them.
ROUTABLE_ROLES = (Role.REP, Role.FIELD_SALES)


def capacity_window(
    at: dt.datetime, period: str, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The tenant-local day, week (Monday first) or month holding `at`, as instants."""
    day = local_date(at, zone)
    if period == "day":
        first, last = day, day + dt.timedelta(days=1)
    elif period == "week":
        first = day - dt.timedelta(days=day.weekday())
        last = first + dt.timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1)
    return (
        dt.datetime.combine(first, dt.time(0), tzinfo=zone),
        dt.datetime.combine(last, dt.time(0), tzinfo=zone),
    )


def team_weights(rule: dict[str, Any]) -> list[tuple[int, int]]:
    """(member id, weight) of the rule's team members who take leads (reps and field sales,
    not managers or viewers), in member order: weight 1 unless the rule says otherwise (0
    leaves a member out)."""
    weights = rule.get("weights", {})
    members = Membership.objects.filter(team_id=rule["teamId"], role__in=ROUTABLE_ROLES).order_by(
        "pk"
    )
    return [(pk, weights.get(str(pk), 1)) for pk in members.values_list("pk", flat=True)]


def _loads(stage: str, member_ids: list[int], window: tuple[dt.datetime, dt.datetime]) -> Counter:
    rows = (
        Assignment.objects.filter(
            stage=stage, member_id__in=member_ids, at__gte=window[0], at__lt=window[1]
        )
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    return Counter(dict(rows))


def route_lead(
    *,
    lead: Lead,
    stage: str,
    version: RuleVersion | None = None,
    owner: Membership | None = None,
    at: dt.datetime | None = None,
    actor: Membership | None = None,
    exclude: frozenset[int] = frozenset(),
) -> Assignment | None:
    """Assign `lead` for `stage` (`mql` or `sql`): to `owner` when one is chosen, else by the
    version's routing rule for the stage; None when neither applies (nothing changes).

    Every assignment records why: the rule version, the strategy, the rotation slot, and the
    members passed over with their reason. When nobody in the team can take the lead, the
    assignment is recorded with no member and the lead keeps its owner. `exclude` names
    members a reassignment must pass over (the current owner).
    """
    at = at or timezone.now()
    rule = ((version.routing if version is not None else None) or {}).get(stage)
    if owner is None and not rule:
        return None
    with tenant_context(lead.tenant_id), transaction.atomic():
        tenant = Tenant.objects.get(pk=lead.tenant_id)
        reason: dict[str, Any] = {"ruleVersionId": None if version is None else version.pk}
        member: Membership | None
        if owner is not None:
            if owner.tenant_id != lead.tenant_id:
                raise NotFound("Member", field="ownerId")
            member, reason["strategy"] = owner, "chosen"
        elif rule.get("strategy") == OWNER:
            member = Membership.objects.filter(pk=rule["ownerId"], is_active=True).first()
            reason["strategy"] = OWNER
            if member is None:
                reason["skipped"] = [{"memberId": rule["ownerId"], "reason": "inactive"}]
        else:
            member, pick = _round_robin(tenant, stage, rule, at, exclude)
            reason |= {
                "strategy": ROUND_ROBIN,
                "teamId": rule["teamId"],
                "rotationPosition": pick.slot,
                "skipped": pick.skipped,
            }
            if "capacity" in rule:
                reason["capacity"] = rule["capacity"]
        assignment = Assignment.objects.create(
            tenant_id=lead.tenant_id, lead=lead, member=member, stage=stage, version=version,
            reason=reason, at=at,
        )  # fmt: skip
        if member is not None and lead.owner_id != member.pk:
            updated = lead_update(lead=lead, owner=member)
            lead.owner_id, lead.team_id = updated.owner_id, updated.team_id
        audit_record(
            tenant=lead.tenant_id,
            action=f"{stage}.assigned",
            actor=actor,
            version=version,
            lead=lead,
            details={"memberId": None if member is None else member.pk, **reason},
            at=at,
        )
    from handoff.notifying import assignment_publish

    assignment_publish(tenant=tenant, assignment=assignment)
    return assignment


def _round_robin(
    tenant: Tenant, stage: str, rule: dict[str, Any], at: dt.datetime, exclude: frozenset[int]
) -> tuple[Membership | None, Pick]:
    if not Team.objects.filter(pk=rule["teamId"]).exists():
        # a deleted team, or an id from another tenant: nobody to route to
        return None, Pick(None, None, 0, [{"teamId": rule["teamId"], "reason": "unknownTeam"}])
    # TRICKY: the rotation row is locked for the rest of the transaction, so two leads routed
    # at once take consecutive slots instead of both taking the same member.
    RotationState.objects.get_or_create(tenant=tenant, stage=stage, team_id=rule["teamId"])
    state = RotationState.objects.select_for_update().get(stage=stage, team_id=rule["teamId"])
    weights = team_weights(rule)
    member_ids = [pk for pk, _ in weights]
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    inactive = set(
        Membership.objects.filter(pk__in=member_ids, is_active=False).values_list("pk", flat=True)
    )
    cap = rule.get("capacity")
    pick = pick_member(
        order=rotation(weights),
        position=state.position,
        inactive=inactive,
        on_leave=members_on_leave(tenant=tenant, day=local_date(at, zone), member_ids=member_ids),
        load=_loads(stage, member_ids, capacity_window(at, cap["period"], zone)) if cap else {},
        cap=cap["max"] if cap else None,
        excluded=exclude,
    )
    if pick.next_position != state.position:
        state.position = pick.next_position
        state.save(update_fields=["position", "updated_at"])
    member = None if pick.member_id is None else Membership.objects.get(pk=pick.member_id)
    return member, pick
