"""Writes for pipeline data: leads and their lifecycle, activities, deals and their stages."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone

from pipeline import bounds
from pipeline.dirty import (
    local_day,
    mark_activities_added,
    mark_days_dirty,
    mark_lead_history_dirty,
)
from pipeline.lifecycle import Stage, is_allowed
from pipeline.models import (
    Activity,
    Deal,
    DealStage,
    DealStageChange,
    DirtyKind,
    Lead,
    StageTransition,
)
from tenants import team_history
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed, camel_case
from tenants.models import Membership, Tenant

# Fields a client may set on a lead; the stage changes only through lead_transition.
LEAD_FIELDS: frozenset[str] = frozenset(
    {
        "source_system",
        "external_id",
        "company",
        "contact_name",
        "email",
        "industry",
        "employee_count",
        "title",
        "attributes",
        "source",
        "owner",
        "team",
        "score",
        "created_at",
    }
)


def _full_clean(obj: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Model validation (lengths, choices, e-mail, constraints) as a ValidationFailed."""
    try:
        obj.full_clean(exclude=list(exclude))
    except DjangoValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        if field == "__all__" and "external_id" in " ".join(messages):
            raise PublicError(
                "A record with this external id already exists.",
                code=ErrorCode.CONFLICT,
                field="externalId",
            ) from exc
        public_field = None if field == "__all__" else camel_case(field)
        raise ValidationFailed(" ".join(messages), field=public_field) from exc


def _aware(value: Any, *, field: str, required: bool = True) -> dt.datetime | None:
    if value is None:
        if required:
            raise ValidationFailed("This field is required.", field=field)
        return None
    if not isinstance(value, dt.datetime):
        raise ValidationFailed("Expected a date and time.", field=field)
    if timezone.is_naive(value):
        raise ValidationFailed("The time must include a UTC offset.", field=field)
    # Checked before the conversion below, which overflows for year 1 or 9999.
    problem = bounds.moment_problem(value, bounds.latest(timezone.now()))
    if problem is not None:
        raise PublicError(problem, code=ErrorCode.OUT_OF_RANGE, field=field)
    # Stored and returned in UTC, whatever offset the client sent.
    return value.astimezone(dt.UTC)


def _money(value: Any, *, field: str) -> Decimal:
    """A non-negative amount with at most 14 digits before the point and 2 after it."""
    if isinstance(value, float):
        raise ValidationFailed("Send money as a decimal string, not a float.", field=field)
    try:
        return bounds.money_parse(value)
    except bounds.MoneyRefused as refused:
        if refused.code == "OUT_OF_RANGE":
            raise PublicError(refused.message, code=ErrorCode.OUT_OF_RANGE, field=field) from None
        raise ValidationFailed(refused.message, field=field) from None


def _check_texts(values: dict[str, Any]) -> None:
    """Text values must be storable: no NUL, no lone surrogate (PostgreSQL refuses both)."""
    for name, value in values.items():
        if isinstance(value, str):
            problem = bounds.text_problem(value)
            if problem is not None:
                raise ValidationFailed(problem, field=camel_case(name))


def _check_attributes(value: Any) -> None:
    if isinstance(value, dict):
        problem = bounds.attributes_problem(value)
        if problem is not None:
            raise ValidationFailed(problem[1], field="attributes")


def _currency(value: Any, *, field: str = "currency") -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValidationFailed("A currency is 3 letters (ISO 4217), e.g. JPY.", field=field)
    return value.upper()


def _same_tenant(obj: models.Model | None, tenant_id: int, *, what: str, field: str) -> None:
    # Another tenant's object is "not found", exactly like a missing one.
    if obj is not None and obj.tenant_id != tenant_id:  # type: ignore[attr-defined]
        raise NotFound(what, field=field)


def _check_lead_refs(fields: dict[str, Any], tenant_id: int) -> None:
    _same_tenant(fields.get("owner"), tenant_id, what="Member", field="ownerId")
    _same_tenant(fields.get("team"), tenant_id, what="Team", field="teamId")


def _check_lead_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - LEAD_FIELDS
    if "stage" in unknown:
        raise ValidationFailed("Change a lead's stage with a transition.", field="stage")
    if unknown:
        raise ValidationFailed(f"Unknown lead field {sorted(unknown)[0]!r}.", field=None)
    if "created_at" in fields:
        fields["created_at"] = _aware(fields["created_at"], field="createdAt")
    if "company" in fields:
        fields["company"] = (fields["company"] or "").strip()
    if fields.get("attributes") is None and "attributes" in fields:
        fields["attributes"] = {}
    if "attributes" in fields and not isinstance(fields["attributes"], dict):
        raise ValidationFailed("Attributes must be an object.", field="attributes")
    _check_texts(fields)
    _check_attributes(fields.get("attributes"))


def lead_create(*, tenant: Tenant, **fields: Any) -> Lead:
    """Create a lead at the `lead` stage; its team defaults to its owner's team."""
    _check_lead_fields(fields)
    with tenant_context(tenant):
        _check_lead_refs(fields, tenant.pk)
        owner = fields.get("owner")
        if "team" not in fields and owner is not None and owner.team_id is not None:
            fields["team_id"] = owner.team_id
        lead = Lead(tenant=tenant, stage=Stage.LEAD, **fields)
        _full_clean(lead, exclude=["owner", "team"])
        lead.save()
        mark_days_dirty(tenant=tenant, datetimes=[lead.created_at], kinds=DirtyKind.LEADS)
    return lead


def lead_update(*, lead: Lead, **fields: Any) -> Lead:
    """Change a lead's details (not its stage); only the given fields are written."""
    _check_lead_fields(fields)
    if not fields:
        return lead
    with tenant_context(lead.tenant_id):
        _check_lead_refs(fields, lead.tenant_id)
        locked = (
            Lead.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=lead.pk)
        )
        previous_created_at = locked.created_at
        attribution = (locked.source, locked.owner_id, locked.team_id)
        for name, value in fields.items():
            setattr(locked, name, value)
        _full_clean(locked, exclude=["owner", "team"])
        locked.save(update_fields=[*fields, "updated_at"])
        mark_days_dirty(
            tenant=locked.tenant,
            datetimes=[previous_created_at, locked.created_at],
            kinds=DirtyKind.LEADS,
        )
        if attribution != (locked.source, locked.owner_id, locked.team_id):
            mark_lead_history_dirty(tenant=locked.tenant, lead_ids=[locked.pk])
    return locked


def lead_transition(
    *,
    lead: Lead,
    to_stage: str,
    at: dt.datetime | None = None,
    actor: Membership | None = None,
    actor_label: str = "",
    reason: str = "",
) -> StageTransition:
    """Move a lead to another lifecycle stage and record the change with its owner then.

    Only changes in ALLOWED_TRANSITIONS are made; anything else raises INVALID_TRANSITION
    and changes nothing. The lead row is locked, so two concurrent moves cannot both start
    from the same stage.
    """
    at = _aware(at, field="at", required=False) or timezone.now()
    if to_stage not in Stage.values:
        raise ValidationFailed(f"Unknown stage {to_stage!r}.", field="toStage")
    if len(reason) > StageTransition._meta.get_field("reason").max_length:  # type: ignore[operator]
        raise ValidationFailed("The reason is too long (500 characters at most).", field="reason")
    _check_texts({"reason": reason})
    with tenant_context(lead.tenant_id):
        _same_tenant(actor, lead.tenant_id, what="Member", field="actor")
        # TRICKY: of=("self",) locks only the lead; the joined owner/tenant stay unlocked
        # (PostgreSQL also refuses FOR UPDATE on the nullable side of an outer join).
        locked = (
            Lead.objects.select_for_update(of=("self",))
            .select_related("tenant", "owner")
            .get(pk=lead.pk)
        )
        from_stage = locked.stage
        if not is_allowed(from_stage, to_stage):
            raise PublicError(
                f"A lead cannot move from {from_stage!r} to {to_stage!r}.",
                code=ErrorCode.INVALID_TRANSITION,
                field="toStage",
            )
        last_at = (
            StageTransition.objects.filter(lead=locked)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        if last_at is not None and at < last_at:
            raise ValidationFailed(
                "A transition cannot be dated before the lead's previous one.", field="at"
            )
        owner = locked.owner
        # The owner's team on the transition's day (team history), else the lead's team.
        team_id = None
        if owner is not None:
            day = local_day(at, zoneinfo.ZoneInfo(locked.tenant.timezone))
            team_id = team_history.team_lookup([owner.pk])(owner.pk, day)
        team_id = team_id or locked.team_id
        transition = StageTransition.objects.create(
            tenant_id=locked.tenant_id,
            lead=locked,
            from_stage=from_stage,
            to_stage=to_stage,
            at=at,
            actor=actor,
            actor_label=actor_label[:150],
            reason=reason,
            owner=owner,
            team_id=team_id,
        )
        locked.stage = to_stage
        locked.save(update_fields=["stage", "updated_at"])
        mark_days_dirty(tenant=locked.tenant, datetimes=[at], kinds=DirtyKind.TRANSITIONS)
    lead.stage = locked.stage
    lead.updated_at = locked.updated_at
    return transition


def activity_create(
    *,
    tenant: Tenant,
    lead: Lead,
    type: str,
    occurred_at: dt.datetime,
    rep: Membership | None = None,
    call_outcome: str = "",
    email_delivered: bool = False,
    email_opened: bool = False,
    email_clicked: bool = False,
    duration_seconds: int | None = None,
    source_system: str = "",
    external_id: str | None = None,
) -> Activity:
    """Record a call, e-mail, meeting or other touch of a lead."""
    occurred_at = _aware(occurred_at, field="occurredAt")  # type: ignore[assignment]
    if type not in Activity.Type.values:
        raise ValidationFailed(f"Unknown activity type {type!r}.", field="type")
    if call_outcome and type != Activity.Type.CALL:
        raise ValidationFailed("Only calls have an outcome.", field="callOutcome")
    if duration_seconds is not None and duration_seconds < 0:
        raise ValidationFailed("A duration cannot be negative.", field="durationSeconds")
    _check_texts({"source_system": source_system, "external_id": external_id})
    with tenant_context(tenant):
        _same_tenant(lead, tenant.pk, what="Lead", field="leadId")
        _same_tenant(rep, tenant.pk, what="Member", field="repId")
        activity = Activity(
            tenant=tenant,
            lead=lead,
            rep=rep,
            type=type,
            occurred_at=occurred_at,
            call_outcome=call_outcome,
            email_delivered=email_delivered,
            email_opened=email_opened,
            email_clicked=email_clicked,
            duration_seconds=duration_seconds,
            source_system=source_system,
            external_id=external_id,
        )
        _full_clean(activity, exclude=["lead", "rep"])
        activity.save()
        mark_activities_added(tenant=tenant, added=[(activity.pk, occurred_at)])
    return activity


def deal_create(
    *,
    tenant: Tenant,
    lead: Lead,
    amount: Decimal,
    stage: DealStage | None = None,
    currency: str | None = None,
    name: str = "",
    owner: Membership | None = None,
    sourced_by_is: bool = True,
    created_at: dt.datetime | None = None,
    source_system: str = "",
    external_id: str | None = None,
) -> Deal:
    """Create a deal in a stage (the first open one by default) and record that entry.

    Currency defaults to the tenant's, owner to the lead's owner; a deal created in a won or
    lost stage is closed at its creation time.
    """
    amount = _money(amount, field="amount")
    currency = _currency(currency if currency is not None else tenant.currency)
    _check_texts({"name": name, "source_system": source_system, "external_id": external_id})
    created_at = _aware(created_at, field="createdAt", required=False) or timezone.now()
    with tenant_context(tenant):
        _same_tenant(lead, tenant.pk, what="Lead", field="leadId")
        _same_tenant(owner, tenant.pk, what="Member", field="ownerId")
        _same_tenant(stage, tenant.pk, what="Deal stage", field="stageId")
        if stage is None:
            stage = DealStage.objects.filter(is_won=False, is_lost=False).order_by("order").first()
            if stage is None:
                raise ValidationFailed("The workspace has no open deal stage.", field="stageId")
        deal = Deal(
            tenant=tenant,
            lead=lead,
            name=name,
            amount=amount,
            currency=currency,
            stage=stage,
            owner=owner if owner is not None else lead.owner,
            sourced_by_is=sourced_by_is,
            created_at=created_at,
            closed_at=created_at if stage.is_closed else None,
            source_system=source_system,
            external_id=external_id,
        )
        _full_clean(deal, exclude=["lead", "stage", "owner"])
        deal.save()
        DealStageChange.objects.create(tenant=tenant, deal=deal, stage=stage, at=created_at)
        mark_days_dirty(tenant=tenant, datetimes=[created_at], kinds=DirtyKind.DEALS)
    return deal


def deal_move_stage(*, deal: Deal, stage: DealStage, at: dt.datetime | None = None) -> Deal:
    """Move a deal to another stage and record it; entering won/lost closes it, leaving reopens."""
    at = _aware(at, field="at", required=False) or timezone.now()
    with tenant_context(deal.tenant_id):
        _same_tenant(stage, deal.tenant_id, what="Deal stage", field="stageId")
        locked = (
            Deal.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=deal.pk)
        )
        if locked.stage_id == stage.pk:
            raise ValidationFailed("The deal is already in this stage.", field="stageId")
        last_at = (
            DealStageChange.objects.filter(deal=locked)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        if at < locked.created_at or (last_at is not None and at < last_at):
            raise ValidationFailed(
                "A stage change cannot be dated before the deal's previous one.", field="at"
            )
        touched = [at, locked.closed_at]
        locked.stage = stage
        locked.closed_at = at if stage.is_closed else None
        locked.save(update_fields=["stage", "closed_at"])
        DealStageChange.objects.create(tenant_id=locked.tenant_id, deal=locked, stage=stage, at=at)
        mark_days_dirty(tenant=locked.tenant, datetimes=touched, kinds=DirtyKind.DEALS)
    return locked
