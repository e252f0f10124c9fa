"""Stage histories at the partner's own times: lead lifecycle changes and deal stage changes.

They arrive backdated and out of order; each is merged into the stored history in time
order and validated against the lifecycle at its own point in time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from pipeline.ingestion.batch import Batch
from pipeline.ingestion.fields import Errors, RowReader
from pipeline.ingestion.results import IngestKind, RowErrorCode
from pipeline.ingestion.upsert import rows_update
from pipeline.lifecycle import Stage, is_allowed
from pipeline.models import Deal, DealStageChange, DirtyKind, Lead, StageTransition


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
        ],
    )
    incoming: dict[int, list[tuple[int, Errors, str, dt.datetime, str]]] = defaultdict(list)
    seen: dict[tuple[int, str, dt.datetime], int] = {}
    for index, raw in enumerate(batch.rows(kind)):
        (lead_id, to_stage, at, reason), errors = reader.read(raw)
        if not errors:
            first = seen.setdefault((lead_id, to_stage, at), index)
            if first != index:
                errors.append(("at", RowErrorCode.DUPLICATE, f"Same change as row {first}."))
        if errors:
            batch.reject(kind, index, errors)
        else:
            incoming[lead_id].append((index, errors, to_stage, at, reason))
    if not incoming:
        return
    stored: dict[int, list[StageTransition]] = defaultdict(list)
    for transition in StageTransition.objects.filter(lead_id__in=incoming).order_by("at", "id"):
        stored[transition.lead_id].append(transition)
    leads = {
        pk: (stage, owner_id, team_id)
        for pk, stage, owner_id, team_id in Lead.objects.filter(pk__in=incoming).values_list(
            "pk", "stage", "owner_id", "owner__team_id"
        )
    }
    counts = batch.counts(kind)
    new: list[StageTransition] = []
    refrom: list[StageTransition] = []
    final_stage: dict[int, str] = {}
    for lead_id, changes in incoming.items():
        _, owner_id, team_id = leads[lead_id]
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
                    team_id=team_id,
                )
            )
            counts.created += 1
            accepted = True
            batch.dirty[DirtyKind.TRANSITIONS].append(at)
            current = to_stage
        if accepted and current != leads[lead_id][0]:
            final_stage[lead_id] = current
    StageTransition.objects.bulk_create(new)
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
        ],
    )
    parsed: list[tuple[int, int, dt.datetime]] = []
    seen: dict[tuple[int, int, dt.datetime], int] = {}
    for index, raw in enumerate(batch.rows(kind)):
        (deal_id, stage_id, at), errors = reader.read(raw)
        if not errors:
            first = seen.setdefault((deal_id, stage_id, at), index)
            if first != index:
                errors.append(("at", RowErrorCode.DUPLICATE, f"Same change as row {first}."))
        if errors:
            batch.reject(kind, index, errors)
        else:
            parsed.append((deal_id, stage_id, at))
    deal_ids = {deal_id for deal_id, _, _ in parsed} | {
        key[0] for key in batch.pending_deal_changes
    }
    if not deal_ids:
        return
    history: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    stored = set()
    for deal_id, stage_id, at in DealStageChange.objects.filter(deal_id__in=deal_ids).values_list(
        "deal_id", "stage_id", "at"
    ):
        stored.add((deal_id, stage_id, at))
        history[deal_id].append((at, stage_id))
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
    touched = {change.deal_id for change in new}
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
