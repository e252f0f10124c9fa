"""The records of a batch keyed by external id: leads, activities and deals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.ingestion.batch import EXTERNAL_ID_MAX, Batch
from pipeline.ingestion.fields import Field, RowReader
from pipeline.ingestion.results import IngestKind, RowErrorCode
from pipeline.ingestion.upsert import Upserted, external_id_in, records_upsert, rows_update
from pipeline.models import Activity, Deal, DealStageChange, DirtyKind, Lead

# Parsed rows: (external_id, *values in the order of the kind's fields).
Parsed = list[tuple[Any, ...]]


def read_records(batch: Batch, kind: IngestKind, fields: list[Field]) -> Parsed:
    """Read every row of `kind`; a later row with an external id already seen is a duplicate.

    Rejected rows go into the batch's result; the rest are returned in batch order.
    """
    reader = RowReader(
        batch.fields.naming,
        [batch.fields.text("external_id", max_length=EXTERNAL_ID_MAX, required=True), *fields],
    )
    parsed: Parsed = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(batch.rows(kind)):
        values, errors = reader.read(raw)
        external_id = values[0]
        if external_id:
            first = first_index.setdefault(external_id, index)
            if first != index:
                errors.append(
                    ("externalId", RowErrorCode.DUPLICATE, f"Same externalId as row {first}.")
                )
        if errors:
            batch.reject(kind, index, errors)
        else:
            parsed.append(tuple(values))
    return parsed


def count(batch: Batch, kind: IngestKind, upserted: Upserted) -> None:
    counts = batch.counts(kind)
    counts.created += len(upserted.created)
    counts.updated += len(upserted.updated)
    counts.unchanged += len(upserted.unchanged)


def _lead_fields(batch: Batch) -> list[Field]:
    f = batch.fields
    return [
        f.text("company", max_length=200, required=True),
        f.text("contact_name", max_length=200),
        f.text("email", max_length=254),
        f.text("industry", max_length=100),
        f.integer("employee_count", minimum=0),
        f.text("title", max_length=150),
        f.mapping("attributes"),
        f.text("source", max_length=50),
        f.integer("score", default=0),
        f.moment("created_at", required=True),
        f.member("owner", lookup=batch.members),
        f.reference(
            "team_id",
            key_name="team_name",
            lookup=batch.teams,
            message="No team has this name.",
            max_length=100,
        ),
    ]


def ingest_leads(batch: Batch) -> None:
    kind = IngestKind.LEAD
    fields = _lead_fields(batch)
    parsed = read_records(batch, kind, fields)
    columns = [field.name for field in fields]
    created_at = columns.index("created_at") + 1
    upserted = records_upsert(
        model=Lead,
        tenant=batch.tenant,
        source_system=batch.source_system,
        columns=columns,
        rows=parsed,
        before=("created_at", "source", "owner_id"),
        now=batch.now,
        # A lead's creation counts for its owner then: a later owner does not move it.
        on_insert={"created_owner_id": "owner_id"},
    )
    count(batch, kind, upserted)
    _dirty(batch, DirtyKind.LEADS, parsed, upserted, (created_at,), before_times=1)
    batch.lead_ids.update(upserted.ids)
    # A lead's activities, stage changes and deals count for its source (and owner): when
    # either changes, every day of its history is recomputed.
    source, owner = columns.index("source") + 1, columns.index("owner_id") + 1
    by_external_id = {row[0]: row for row in parsed}
    for external_id in upserted.updated:
        row = by_external_id[external_id]
        if tuple(upserted.before[external_id][1:]) != (row[source], row[owner]):
            batch.reattributed_leads.add(upserted.ids[external_id])


def ingest_activities(batch: Batch) -> None:
    kind = IngestKind.ACTIVITY
    batch.resolve_leads(kind)
    f = batch.fields
    fields = [
        batch.lead_reference(),
        f.member("rep", lookup=batch.members),
        f.choice("type", Activity.Type.values, required=True),
        f.moment("occurred_at", required=True),
        f.choice("call_outcome", Activity.CallOutcome.values),
        f.boolean("email_delivered", default=False),
        f.boolean("email_opened", default=False),
        f.boolean("email_clicked", default=False),
        f.integer("duration_seconds", minimum=0),
    ]
    parsed = read_records(batch, kind, fields)
    columns = [field.name for field in fields]
    upserted = records_upsert(
        model=Activity,
        tenant=batch.tenant,
        source_system=batch.source_system,
        columns=columns,
        rows=parsed,
        before=("occurred_at",),
        now=batch.now,
    )
    count(batch, kind, upserted)
    # New activities are counted one by one; a changed one may have left a lead or rep of
    # its old day, whose periods recount their members.
    occurred_at = columns.index("occurred_at") + 1
    created, updated = set(upserted.created), set(upserted.updated)
    batch.added_activities.extend(
        (upserted.ids[row[0]], row[occurred_at]) for row in parsed if row[0] in created
    )
    changed = Upserted(updated=upserted.updated, before=upserted.before)
    rows = [row for row in parsed if row[0] in updated]
    _dirty(batch, DirtyKind.ACTIVITIES, rows, changed, (occurred_at,), rescan=True)


def _dirty(
    batch: Batch,
    kind: DirtyKind,
    parsed: Parsed,
    upserted: Upserted,
    positions: tuple[int, ...],
    *,
    before_times: int | None = None,
    rescan: bool = False,
) -> None:
    """Mark the days of created rows, and the old and new days of changed ones.

    `before_times`: how many of the stored `before` values are times (all by default).
    `rescan`: the old and new days of changed rows also recount distinct members.
    """
    for external_id in upserted.updated:
        old_times = upserted.before[external_id][:before_times]
        batch.dirty[kind].extend(old_times)
        if rescan:
            batch.rescan.extend(old_times)
    if upserted.unchanged:
        unchanged = set(upserted.unchanged)
        parsed = [row for row in parsed if row[0] not in unchanged]
    for position in positions:
        batch.dirty[kind].extend(row[position] for row in parsed)
    if rescan and upserted.updated:
        updated = set(upserted.updated)
        for position in positions:
            batch.rescan.extend(row[position] for row in parsed if row[0] in updated)


def ingest_deals(batch: Batch) -> None:
    kind = IngestKind.DEAL
    if not batch.rows(kind):
        return
    batch.resolve_leads(kind)
    stages = batch.deal_stages()
    f = batch.fields
    fields = [
        f.reference(
            "stage_id",
            key_name="stage_name",
            lookup=batch.deal_stage_ids,
            message="No deal stage has this name.",
            max_length=100,
            required=True,
        ),
        _currency(batch),
        batch.lead_reference(),
        f.text("name", max_length=200),
        f.money("amount", required=True),
        f.member("owner", lookup=batch.members),
        f.boolean("sourced_by_is", default=True),
        f.moment("created_at", required=True),
        f.moment("closed_at"),
    ]
    parsed = read_records(batch, kind, fields)
    if not parsed:
        return
    columns = [field.name for field in fields]
    stage_at, closed_at, created_at = (
        columns.index(name) + 1 for name in ("stage_id", "closed_at", "created_at")
    )
    # Deals whose history this batch sends explicitly get no implied stage change, and for
    # a stored one that history (not the deal row) decides its stage and closing.
    with_history = batch.texts(IngestKind.DEAL_STAGE_CHANGE, "deal_external_id")
    stored_with_history = set()
    if with_history:
        stored_with_history = set(
            Deal.objects.filter(
                external_id_in([row[0] for row in parsed if row[0] in with_history]),
                source_system=batch.source_system,
            ).values_list("external_id", flat=True)
        )
    keep = [i for i in range(len(columns) + 1) if i not in (stage_at, closed_at)]
    groups = [
        (columns, [row for row in parsed if row[0] not in stored_with_history]),
        (
            [columns[i - 1] for i in keep[1:]],
            [tuple(row[i] for i in keep) for row in parsed if row[0] in stored_with_history],
        ),
    ]
    before = ("stage_id", "created_at", "closed_at")
    upserted = Upserted()
    for group_columns, rows in groups:
        done = records_upsert(
            model=Deal,
            tenant=batch.tenant,
            source_system=batch.source_system,
            columns=group_columns,
            rows=rows,
            before=before,
            now=batch.now,
        )
        upserted.ids.update(done.ids)
        upserted.created += done.created
        upserted.updated += done.updated
        upserted.unchanged += done.unchanged
        upserted.before.update(done.before)
    count(batch, kind, upserted)
    batch.deal_ids.update(upserted.ids)
    # Dirty days: created_at and closed_at, old and new; a deal whose stage comes from its
    # history keeps its stored closing here.
    changed = set(upserted.created) | set(upserted.updated)
    for external_id in upserted.updated:
        batch.dirty[DirtyKind.DEALS].extend(upserted.before[external_id][1:])
    for row in parsed:
        external_id = row[0]
        if external_id not in changed:
            continue
        batch.dirty[DirtyKind.DEALS].append(row[created_at])
        if external_id in stored_with_history:
            batch.dirty[DirtyKind.DEALS].append(upserted.before[external_id][2])
        else:
            batch.dirty[DirtyKind.DEALS].append(row[closed_at])
    # The stage a deal row sets (new, or moved) is an implied stage change.
    by_pk = {stage.pk: stage for stage in stages.values()}
    created = set(upserted.created)
    reclosed: dict[tuple[int, int, dt.datetime], dt.datetime] = {}
    for row in parsed:
        external_id = row[0]
        if external_id not in changed or external_id in with_history:
            continue
        stage_id = row[stage_at]
        is_new = external_id in created
        if not is_new and upserted.before[external_id][0] == stage_id:
            old_closed_at = upserted.before[external_id][2]
            if by_pk[stage_id].is_closed and old_closed_at and row[closed_at] != old_closed_at:
                # The closing change moves with closed_at: left at the old time, the deal
                # would count as closed from then on (both days are dirty already).
                key = (upserted.ids[external_id], stage_id, old_closed_at)
                reclosed[key] = row[closed_at]
            continue
        if by_pk[stage_id].is_closed and row[closed_at]:
            at = row[closed_at]
        else:
            # NOTE: a stage changed by the deal row itself happened when we learned it.
            at = row[created_at] if is_new else batch.now
        deal_id = upserted.ids[external_id]
        batch.pending_deal_changes[(deal_id, stage_id, at)] = DealStageChange(
            tenant=batch.tenant, deal_id=deal_id, stage_id=stage_id, at=at
        )
        batch.dirty[DirtyKind.DEALS].append(at)
    _move_closing_changes(batch, reclosed)


def _move_closing_changes(
    batch: Batch, moves: dict[tuple[int, int, dt.datetime], dt.datetime | None]
) -> None:
    """Move each deal's closing stage change (deal, stage, old closed_at) to its new closed_at
    (None: the deal row no longer says when it closed, the change stays), in two queries."""
    moves = {key: at for key, at in moves.items() if at is not None}
    if not moves:
        return
    stored = {
        (deal_id, stage_id, at): pk
        for pk, deal_id, stage_id, at in DealStageChange.objects.filter(
            deal_id__in={deal_id for deal_id, _, _ in moves}
        ).values_list("pk", "deal_id", "stage_id", "at")
    }
    updates, duplicates = [], []
    for (deal_id, stage_id, old), new in moves.items():
        pk = stored.get((deal_id, stage_id, old))
        if pk is None:
            continue
        if (deal_id, stage_id, new) in stored:
            duplicates.append(pk)  # the new closing was sent already: the old one goes
        else:
            updates.append((pk, new))
    if duplicates:
        DealStageChange.objects.filter(pk__in=duplicates).delete()
    rows_update(model=DealStageChange, tenant=batch.tenant, columns=["at"], rows=updates)


def _currency(batch: Batch) -> Field:
    text = batch.fields.text("currency", max_length=3)
    default = batch.tenant.currency

    def read(row: dict[str, Any], errors: Any) -> str:
        currency = text.read(row, errors) or default
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            errors.append(("currency", RowErrorCode.INVALID, "Expected a 3-letter ISO 4217 code."))
        return currency.upper()

    return Field("currency", text.keys, read)
