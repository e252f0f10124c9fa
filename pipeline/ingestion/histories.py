"""Stage histories at the partner's own times: lead lifecycle changes and deal stage changes.

They arrive backdated and out of order; each is merged into the stored history in time
order and validated against the lifecycle at its own point in time.

A partner corrects a change it sent by the change's own key, the one it was stored under
(lead or deal externalId, stage, at): `movedTo` moves it to another time, `withdrawn: true`
removes it. The history after the correction must still follow the lifecycle (else
INVALID_TRANSITION, nothing changed for that row); the lead's or deal's stage follows its
latest change, and the days of both the old and the new time are marked dirty.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from typing import Any

from pipeline.dirty import local_day
from pipeline.ingestion.batch import Batch
from pipeline.ingestion.fields import Errors, RowReader
from pipeline.ingestion.results import IngestKind, RowErrorCode
from pipeline.ingestion.upsert import rows_update
from pipeline.lifecycle import Stage, is_allowed
from pipeline.models import Deal, DealStageChange, DirtyKind, Lead, StageTransition
from tenants import team_history

_NO_SUCH_CHANGE = "No stored stage change of this {what} has this stage and time."
_BEFORE_CREATION = "A change cannot be moved before the {} was created."


def _correction(errors: Errors, moved_to: dt.datetime | None, withdrawn: bool) -> str | None:
    """A row's correction: "move", "withdraw" or None (an addition); a row error when both."""
    if withdrawn and moved_to is not None:
        errors.append(("movedTo", RowErrorCode.INVALID, "Move or withdraw a change, not both."))
    if moved_to is not None:
        return "move"
    return "withdraw" if withdrawn else None


def _invalid_steps(stages: list[str]) -> int:
    """How many steps of a lead's history (to-stages in time order) the lifecycle refuses."""
    current, invalid = str(Stage.LEAD), 0
    for stage in stages:
        invalid += not is_allowed(current, stage)
        current = stage
    return invalid


def _correct_lead_history(
    batch: Batch,
    kind: IngestKind,
    history: list[StageTransition],
    corrections: list[tuple[int, Errors, str, dt.datetime, str, dt.datetime | None]],
    created_at: dt.datetime,
) -> tuple[list[StageTransition], list[StageTransition], list[tuple[int, dt.datetime]]]:
    """Apply one lead's corrections in row order to its stored `history` (time order).

    Returns the corrected history, the withdrawn rows and the moved ones as (pk, old at).
    A correction naming no stored change, or leaving the lifecycle broken where it was not,
    is a row error and changes nothing.
    """
    counts = batch.counts(kind)
    withdrawn: list[StageTransition] = []
    moved: list[tuple[int, dt.datetime]] = []
    for index, errors, to_stage, at, action, moved_to in corrections:
        target = next((t for t in history if (t.to_stage, t.at) == (to_stage, at)), None)
        if target is None:
            if action == "move" and any(
                (t.to_stage, t.at) == (to_stage, moved_to) for t in history
            ):
                counts.unchanged += 1  # the same move sent again
                continue
            errors.append(
                ("at", RowErrorCode.UNKNOWN_REFERENCE, _NO_SUCH_CHANGE.format(what="lead"))
            )
            batch.reject(kind, index, errors)
            continue
        if action == "move" and moved_to == at:
            counts.unchanged += 1
            continue
        if action == "move" and moved_to < created_at:
            errors.append(("movedTo", RowErrorCode.OUT_OF_RANGE, _BEFORE_CREATION.format("lead")))
            batch.reject(kind, index, errors)
            continue
        before = _invalid_steps([t.to_stage for t in history])
        rest = [t for t in history if t is not target]
        if action == "move":
            # At equal times a moved change comes after the stored ones, as an addition does.
            candidate = sorted(
                [*rest, target], key=lambda t: (moved_to if t is target else t.at, t is target)
            )
        else:
            candidate = rest
        stages = [t.to_stage for t in candidate]
        if _invalid_steps(stages) > before:
            errors.append(
                (
                    "movedTo" if action == "move" else "withdrawn",
                    RowErrorCode.INVALID_TRANSITION,
                    "The lead's history would no longer follow the lifecycle.",
                )
            )
            batch.reject(kind, index, errors)
            continue
        batch.dirty[DirtyKind.TRANSITIONS].append(at)
        if action == "move":
            moved.append((target.pk, at))
            target.at = moved_to
            batch.dirty[DirtyKind.TRANSITIONS].append(moved_to)
            counts.updated += 1
        else:
            withdrawn.append(target)
            counts.withdrawn += 1
        history = candidate
    return history, withdrawn, moved


def ingest_lead_stage_changes(batch: Batch) -> None:
    kind = IngestKind.LEAD_STAGE_CHANGE
    batch.resolve_leads(kind)
    f = batch.fields
    reader = RowReader(
        f.naming,
        [
            batch.lead_reference(),
            f.choice("to_stage", Stage.values, required=True),
            f.moment("at", required=True),
            f.text("reason", max_length=500),
            f.moment("moved_to"),
            f.boolean("withdrawn", default=False),
        ],
    )
    incoming: dict[int, list[tuple[int, Errors, str, dt.datetime, str]]] = defaultdict(list)
    corrections: dict[int, list[Any]] = defaultdict(list)
    seen: dict[tuple[int, str, dt.datetime], int] = {}
    for index, raw in enumerate(batch.rows(kind)):
        (lead_id, to_stage, at, reason, moved_to, withdrawn), errors = reader.read(raw)
        action = _correction(errors, moved_to, withdrawn)
        if not errors:
            first = seen.setdefault((lead_id, to_stage, at), index)
            if first != index:
                errors.append(("at", RowErrorCode.DUPLICATE, f"Same change as row {first}."))
        if errors:
            batch.reject(kind, index, errors)
        elif action is not None:
            corrections[lead_id].append((index, errors, to_stage, at, action, moved_to))
        else:
            incoming[lead_id].append((index, errors, to_stage, at, reason))
    if not incoming and not corrections:
        return
    incoming = defaultdict(list, incoming)
    stored: dict[int, list[StageTransition]] = defaultdict(list)
    lead_ids = {*incoming, *corrections}
    for transition in StageTransition.objects.filter(lead_id__in=lead_ids).order_by("at", "id"):
        stored[transition.lead_id].append(transition)
    leads = {
        pk: (stage, owner_id, created_at)
        for pk, stage, owner_id, created_at in Lead.objects.filter(pk__in=lead_ids).values_list(
            "pk", "stage", "owner_id", "created_at"
        )
    }
    # A backdated transition records its owner's team on its day (the team history).
    team_on = team_history.team_lookup(owner for _, owner, _ in leads.values())
    zone = zoneinfo.ZoneInfo(batch.tenant.timezone)
    counts = batch.counts(kind)
    new: list[StageTransition] = []
    refrom: list[StageTransition] = []
    final_stage: dict[int, str] = {}
    withdrawn: list[StageTransition] = []
    moved: list[StageTransition] = []
    for lead_id in lead_ids:
        changes = incoming[lead_id]
        _, owner_id, created_at = leads[lead_id]
        corrected = False
        if corrections[lead_id]:
            history, gone, shifted = _correct_lead_history(
                batch, kind, stored[lead_id], corrections[lead_id], created_at
            )
            withdrawn += gone
            by_pk = {t.pk: t for t in history}
            moved += [by_pk[pk] for pk, _ in shifted]
            corrected = bool(gone or shifted)
            stored[lead_id] = sorted(history, key=lambda t: t.at)
        stored_keys = {(t.to_stage, t.at) for t in stored[lead_id]}
        # Merge in time order; at equal times stored rows come first.
        timeline: list[tuple[dt.datetime, int, int, Any]] = [
            (t.at, 0, position, t) for position, t in enumerate(stored[lead_id])
        ]
        for index, errors, to_stage, at, reason in changes:
            if (to_stage, at) in stored_keys:
                counts.unchanged += 1
                continue
            timeline.append((at, 1, index, (index, errors, to_stage, at, reason)))
        timeline.sort(key=lambda item: item[:3])
        current = str(Stage.LEAD)
        accepted = False
        for at, is_incoming, _, item in timeline:
            if not is_incoming:
                # NOTE: stored history is a fact; a backdated change before it may alter
                # its from_stage, which is rewritten below.
                if item.from_stage != current:
                    item.from_stage = current
                    refrom.append(item)
                current = item.to_stage
                continue
            index, errors, to_stage, at, reason = item
            if not is_allowed(current, to_stage):
                errors.append(
                    (
                        "toStage",
                        RowErrorCode.INVALID_TRANSITION,
                        f"A lead cannot go from {current} to {to_stage} (at {at.isoformat()}).",
                    )
                )
                batch.reject(kind, index, errors)
                continue
            new.append(
                StageTransition(
                    tenant=batch.tenant,
                    lead_id=lead_id,
                    from_stage=current,
                    to_stage=to_stage,
                    at=at,
                    actor_label=batch.actor_label,
                    reason=reason,
                    owner_id=owner_id,
                    team_id=team_on(owner_id, local_day(at, zone)),
                )
            )
            counts.created += 1
            accepted = True
            batch.dirty[DirtyKind.TRANSITIONS].append(at)
            current = to_stage
        if (accepted or corrected) and current != leads[lead_id][0]:
            final_stage[lead_id] = current
    if withdrawn:
        StageTransition.objects.filter(pk__in=[t.pk for t in withdrawn]).delete()
    StageTransition.objects.bulk_create(new)
    rows_update(
        model=StageTransition,
        tenant=batch.tenant,
        columns=["at"],
        rows=[(t.pk, t.at) for t in moved],
    )
    rows_update(
        model=StageTransition,
        tenant=batch.tenant,
        columns=["from_stage"],
        rows=[(t.pk, t.from_stage) for t in refrom],
    )
    by_stage: dict[str, list[int]] = defaultdict(list)
    for lead_id, stage in final_stage.items():
        by_stage[stage].append(lead_id)
    for stage, lead_ids in by_stage.items():
        Lead.objects.filter(pk__in=lead_ids).update(stage=stage, updated_at=batch.now)


def ingest_deal_stage_changes(batch: Batch) -> None:
    """Store deal stage changes (sent, and implied by deal rows); a deal ends in its latest."""
    kind = IngestKind.DEAL_STAGE_CHANGE
    if not batch.rows(kind) and not batch.pending_deal_changes:
        return
    batch.resolve_deals(kind)
    stages = batch.deal_stages()
    f = batch.fields
    reader = RowReader(
        f.naming,
        [
            f.reference(
                "deal_id",
                key_name="deal_external_id",
                lookup=lambda: batch.deal_ids,
                message="No deal has this externalId.",
                max_length=200,
                required=True,
            ),
            f.reference(
                "stage_id",
                key_name="stage_name",
                lookup=batch.deal_stage_ids,
                message="No deal stage has this name.",
                max_length=100,
                required=True,
            ),
            f.moment("at", required=True),
            f.moment("moved_to"),
            f.boolean("withdrawn", default=False),
        ],
    )
    parsed: list[tuple[int, int, dt.datetime]] = []
    corrections: list[tuple[int, Errors, tuple[int, int, dt.datetime], str, Any]] = []
    seen: dict[tuple[int, int, dt.datetime], int] = {}
    for index, raw in enumerate(batch.rows(kind)):
        (deal_id, stage_id, at, moved_to, withdrawn), errors = reader.read(raw)
        action = _correction(errors, moved_to, withdrawn)
        if not errors:
            first = seen.setdefault((deal_id, stage_id, at), index)
            if first != index:
                errors.append(("at", RowErrorCode.DUPLICATE, f"Same change as row {first}."))
        if errors:
            batch.reject(kind, index, errors)
        elif action is not None:
            corrections.append((index, errors, (deal_id, stage_id, at), action, moved_to))
        else:
            parsed.append((deal_id, stage_id, at))
    deal_ids = (
        {deal_id for deal_id, _, _ in parsed}
        | {key[0] for key in batch.pending_deal_changes}
        | {key[0] for _, _, key, _, _ in corrections}
    )
    if not deal_ids:
        return
    history: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    stored_pks: dict[tuple[int, int, dt.datetime], int] = {}
    for pk, deal_id, stage_id, at in DealStageChange.objects.filter(
        deal_id__in=deal_ids
    ).values_list("pk", "deal_id", "stage_id", "at"):
        stored_pks[(deal_id, stage_id, at)] = pk
    original = set(stored_pks)
    corrected = _correct_deal_histories(batch, kind, stored_pks, corrections)
    for deal_id, stage_id, at in stored_pks:
        history[deal_id].append((at, stage_id))
    stored = set(stored_pks)
    counts = batch.counts(kind)
    for key in parsed:
        if key in stored:
            counts.unchanged += 1
            continue
        counts.created += 1
        deal_id, stage_id, at = key
        batch.pending_deal_changes.setdefault(
            key, DealStageChange(tenant=batch.tenant, deal_id=deal_id, stage_id=stage_id, at=at)
        )
    new = [change for key, change in batch.pending_deal_changes.items() if key not in stored]
    for change in new:
        history[change.deal_id].append((change.at, change.stage_id))
        batch.dirty[DirtyKind.DEALS].append(change.at)
    DealStageChange.objects.bulk_create(new)
    # The deal ends in the stage of its latest change; won/lost stages close it then.
    by_pk = {stage.pk: stage for stage in stages.values()}
    touched = {change.deal_id for change in new} | corrected
    _mark_changes_after_a_new_predecessor(batch, original, history, touched)
    updates = []
    for pk, stored_stage_id, stored_closed_at in Deal.objects.filter(pk__in=touched).values_list(
        "pk", "stage_id", "closed_at"
    ):
        at, stage_id = max(history[pk], key=lambda item: item[0])
        closed_at = at if by_pk[stage_id].is_closed else None
        if (stored_stage_id, stored_closed_at) != (stage_id, closed_at):
            batch.dirty[DirtyKind.DEALS].append(stored_closed_at)
            batch.dirty[DirtyKind.DEALS].append(closed_at)
            updates.append((pk, stage_id, closed_at))
    rows_update(model=Deal, tenant=batch.tenant, columns=["stage_id", "closed_at"], rows=updates)


def _correct_deal_histories(
    batch: Batch,
    kind: IngestKind,
    stored: dict[tuple[int, int, dt.datetime], int],
    corrections: list[tuple[int, Errors, tuple[int, int, dt.datetime], str, Any]],
) -> set[int]:
    """Move or withdraw stored deal stage changes (`stored`: key -> pk, updated in place), in
    row order; returns the deals whose history changed. A deal keeps at least one change."""
    if not corrections:
        return set()
    counts = batch.counts(kind)
    moved: list[tuple[int, dt.datetime]] = []
    withdrawn: list[int] = []
    corrected: set[int] = set()
    created = dict(
        Deal.objects.filter(pk__in={key[0] for _, _, key, _, _ in corrections}).values_list(
            "pk", "created_at"
        )
    )
    for index, errors, key, action, moved_to in corrections:
        deal_id, stage_id, at = key
        new_key = (deal_id, stage_id, moved_to)
        pk = stored.get(key)
        if pk is None or (action == "move" and moved_to == at):
            if action == "move" and new_key in stored:
                counts.unchanged += 1  # the same move sent again
                continue
            errors.append(
                ("at", RowErrorCode.UNKNOWN_REFERENCE, _NO_SUCH_CHANGE.format(what="deal"))
            )
            batch.reject(kind, index, errors)
            continue
        if action == "move" and moved_to < created[deal_id]:
            errors.append(("movedTo", RowErrorCode.OUT_OF_RANGE, _BEFORE_CREATION.format("deal")))
            batch.reject(kind, index, errors)
            continue
        if action == "withdraw" and sum(k[0] == deal_id for k in stored) == 1:
            errors.append(
                ("withdrawn", RowErrorCode.INVALID, "A deal keeps at least one stage change.")
            )
            batch.reject(kind, index, errors)
            continue
        if action == "move" and new_key in stored:
            errors.append(
                ("movedTo", RowErrorCode.DUPLICATE, "The deal entered this stage at that time.")
            )
            batch.reject(kind, index, errors)
            continue
        del stored[key]
        batch.dirty[DirtyKind.DEALS].append(at)
        corrected.add(deal_id)
        if action == "move":
            stored[new_key] = pk
            moved.append((pk, moved_to))
            batch.dirty[DirtyKind.DEALS].append(moved_to)
            counts.updated += 1
        else:
            withdrawn.append(pk)
            counts.withdrawn += 1
    if withdrawn:
        DealStageChange.objects.filter(pk__in=withdrawn).delete()
    rows_update(model=DealStageChange, tenant=batch.tenant, columns=["at"], rows=moved)
    return corrected


def _mark_changes_after_a_new_predecessor(
    batch: Batch,
    original: set[tuple[int, int, dt.datetime]],
    history: dict[int, list[tuple[dt.datetime, int]]],
    touched: set[int],
) -> None:
    """Mark the day of each stored change whose previous stage changed.

    TRICKY: a day's weighted-pipeline change of a deal is its new stage's weight minus the
    previous one's; a change added, moved or withdrawn before a stored one changes that
    stored change's previous stage, so its day (not only the corrected ones) moves.
    """
    before: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for deal_id, stage_id, at in original:
        if deal_id in touched:
            before[deal_id].append((at, stage_id))
    for deal_id in touched:
        previous_before = _previous_stages(before[deal_id])
        for key, previous in _previous_stages(history[deal_id]).items():
            if key in previous_before and previous_before[key] != previous:
                batch.dirty[DirtyKind.DEALS].append(key[0])


def _previous_stages(
    changes: list[tuple[dt.datetime, int]],
) -> dict[tuple[dt.datetime, int], int | None]:
    ordered = sorted(changes, key=lambda change: change[0])
    return {
        change: (ordered[position - 1][1] if position else None)
        for position, change in enumerate(ordered)
    }
