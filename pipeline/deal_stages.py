"""A tenant's sales process: its ordered deal stages and their win probabilities (services).

Stages are numbered 1..n without gaps. A new win probability or won/lost flag changes the
weighted pipeline and won deals of every period, so the kpis app rebuilds the tenant's
snapshots after such a save (see kpis.snapshots.scheduling).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from pipeline.bounds import text_problem
from pipeline.models import Deal, DealStage, DealStageChange
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import Tenant

STAGE_NAME_MAX = 100
_FIELDS = frozenset({"name", "win_probability", "is_won", "is_lost", "order"})
# Orders are moved out of the way before they are renumbered: (tenant, order) is unique.
_PARKED = 10_000


def _name(name: Any) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > STAGE_NAME_MAX:
        raise ValidationFailed(f"A stage name has 1 to {STAGE_NAME_MAX} characters.", field="name")
    problem = text_problem(name)
    if problem is not None:
        raise ValidationFailed(problem, field="name")
    return name


def _probability(value: Any) -> Decimal:
    try:
        probability = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed("A win probability is a number.", field="winProbability") from exc
    if not probability.is_finite() or not 0 <= probability <= 1:
        raise ValidationFailed("A win probability is 0 to 1.", field="winProbability")
    # Safe from here: quantize raises only when the result would overflow (1e400).
    if probability != probability.quantize(Decimal("0.0001")):
        raise ValidationFailed("A win probability has at most 4 decimals.", field="winProbability")
    # As stored (4 decimals); "-0" is 0.
    return probability.quantize(Decimal("0.0001")).copy_abs()


def _renumber(stages: list[DealStage]) -> None:
    """Store `stages` as orders 1..n in the given order."""
    moved = [(stage, position) for position, stage in enumerate(stages, start=1)]
    moved = [(stage, position) for stage, position in moved if stage.order != position]
    for stage, position in moved:
        DealStage.objects.filter(pk=stage.pk).update(order=_PARKED + position)
    for stage, position in moved:
        DealStage.objects.filter(pk=stage.pk).update(order=position)
        stage.order = position


def _position(order: Any, count: int) -> int:
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= count:
        raise ValidationFailed(f"The order is 1 to {count}.", field="order")
    return order


def _check(stages: list[DealStage], stage: DealStage) -> None:
    if stage.is_won and stage.is_lost:
        raise ValidationFailed("A stage is won or lost, not both.", field="isLost")
    if any(other.name == stage.name for other in stages if other.pk != stage.pk):
        raise PublicError(
            f"A stage named {stage.name!r} exists.", code=ErrorCode.CONFLICT, field="name"
        )


@transaction.atomic
def deal_stage_create(
    *,
    tenant: Tenant,
    name: str,
    win_probability: Any,
    is_won: bool = False,
    is_lost: bool = False,
    order: int | None = None,
) -> DealStage:
    """Add a stage at `order` (the end if None); the stages from there on move down one."""
    with tenant_context(tenant):
        stages = list(DealStage.objects.select_for_update().order_by("order"))
        stage = DealStage(
            tenant=tenant,
            name=_name(name),
            win_probability=_probability(win_probability),
            is_won=is_won,
            is_lost=is_lost,
            order=_PARKED,
        )
        _check(stages, stage)
        position = len(stages) + 1 if order is None else _position(order, len(stages) + 1)
        try:
            with transaction.atomic():
                stage.save()
        except IntegrityError as exc:
            # Only when the tenant had no stage to lock: another request added one meanwhile.
            raise PublicError(
                "The deal stages changed meanwhile; try again.", code=ErrorCode.CONFLICT
            ) from exc
        stages.insert(position - 1, stage)
        _renumber(stages)
    return stage


@transaction.atomic
def deal_stage_update(*, stage: DealStage, **changes: Any) -> DealStage:
    """Change a stage's name, win probability, won/lost flags or order (only those given)."""
    unknown = set(changes) - _FIELDS
    if unknown:
        raise ValueError(f"Unknown deal stage fields: {sorted(unknown)}")
    with tenant_context(stage.tenant_id):
        stages = list(DealStage.objects.select_for_update().order_by("order"))
        locked = next(s for s in stages if s.pk == stage.pk)
        if "name" in changes:
            locked.name = _name(changes["name"])
        if "win_probability" in changes:
            locked.win_probability = _probability(changes["win_probability"])
        for flag in ("is_won", "is_lost"):
            if flag in changes:
                setattr(locked, flag, bool(changes[flag]))
        _check(stages, locked)
        fields = [name for name in _FIELDS - {"order"} if name in changes]
        if fields:
            locked.save(update_fields=fields)
        if "order" in changes:
            position = _position(changes["order"], len(stages))
            stages.remove(locked)
            stages.insert(position - 1, locked)
            _renumber(stages)
    return locked


@transaction.atomic
def deal_stage_delete(*, stage: DealStage) -> None:
    """Delete a stage no deal is or was in; the later stages move up one."""
    with tenant_context(stage.tenant_id):
        stages = list(DealStage.objects.select_for_update().order_by("order"))
        if (
            Deal.objects.filter(stage_id=stage.pk).exists()
            or DealStageChange.objects.filter(stage_id=stage.pk).exists()
        ):
            raise PublicError(
                "Deals are or were in this stage: it stays (rename it, or change its "
                "probability, instead).",
                code=ErrorCode.CONFLICT,
                field="id",
            )
        if not any(s.pk == stage.pk for s in stages):
            raise NotFound("Deal stage", field="id")
        DealStage.objects.filter(pk=stage.pk).delete()
        _renumber([s for s in stages if s.pk != stage.pk])
