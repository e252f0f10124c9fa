"""Partner ingestion: one set-based upsert of a batch of leads, activities, deals and histories.

A batch is a dict of row lists (`leads`, `activities`, `deals`, `lead_stage_changes`,
`deal_stage_changes`) plus the `source_system` every row's `external_id` belongs to; rows
reference each other by external id. Bad rows are reported and skipped, good rows are
stored; sending the same batch twice changes nothing. Times are the partner's: stage
histories arrive backdated and out of order and are stored at their own times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from pipeline.dirty import mark_days_dirty
from pipeline.lifecycle import Stage, is_allowed
from pipeline.models import (
    Activity,
    Deal,
    DealStage,
    DealStageChange,
    IngestionRequest,
    Lead,
    StageTransition,
)
from tenants.context import TenantNotSet, current_tenant_id
from tenants.errors import ErrorCode, PublicError
from tenants.models import Membership, Team, Tenant

# Any constant works; the second key of the lock is the tenant id.
_ADVISORY_LOCK_CLASS = 0x1A6E57


class IngestKind(StrEnum):
    LEAD = "lead"
    ACTIVITY = "activity"
    DEAL = "deal"
    LEAD_STAGE_CHANGE = "lead_stage_change"
    DEAL_STAGE_CHANGE = "deal_stage_change"


# The batch key of each kind's rows; a row error's index is its position in that list.
BATCH_KEYS: dict[IngestKind, str] = {
    IngestKind.LEAD: "leads",
    IngestKind.ACTIVITY: "activities",
    IngestKind.DEAL: "deals",
    IngestKind.LEAD_STAGE_CHANGE: "lead_stage_changes",
    IngestKind.DEAL_STAGE_CHANGE: "deal_stage_changes",
}


class RowErrorCode(StrEnum):
    REQUIRED = "REQUIRED"
    INVALID = "INVALID"
    INVALID_CHOICE = "INVALID_CHOICE"
    TOO_LONG = "TOO_LONG"
    NEGATIVE = "NEGATIVE"
    INVALID_DATETIME = "INVALID_DATETIME"
    NAIVE_DATETIME = "NAIVE_DATETIME"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    DUPLICATE = "DUPLICATE"
    INVALID_TRANSITION = "INVALID_TRANSITION"


@dataclass(frozen=True)
class RowError:
    """Why one row of a batch was not stored; `field` is the client's (camelCase) name."""

    kind: IngestKind
    index: int
    field: str | None
    code: RowErrorCode
    message: str


@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class IngestResult:
    """Per-kind counts and the row errors of one batch (`replayed` for an idempotent retry)."""

    counts: dict[IngestKind, KindCounts] = field(
        default_factory=lambda: {kind: KindCounts() for kind in IngestKind}
    )
    row_errors: list[RowError] = field(default_factory=list)
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {kind.value: asdict(counts) for kind, counts in self.counts.items()},
            "row_errors": [asdict(error) for error in self.row_errors],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> IngestResult:
        return cls(
            counts={IngestKind(k): KindCounts(**v) for k, v in data["counts"].items()},
            row_errors=[
                RowError(
                    kind=IngestKind(e["kind"]),
                    index=e["index"],
                    field=e["field"],
                    code=RowErrorCode(e["code"]),
                    message=e["message"],
                )
                for e in data["row_errors"]
            ],
            replayed=replayed,
        )


def records_ingest(
    *,
    tenant: Tenant,
    batch: dict[str, Any],
    idempotency_key: str | None = None,
    actor_label: str,
) -> IngestResult:
    """Upsert a partner batch into `tenant` (which must be the tenant in context).

    Raises PublicError BATCH_TOO_LARGE (nothing stored) or CONFLICT (an idempotency key
    reused with a different payload); every other problem is a row error in the result.
    """
    if current_tenant_id() != tenant.pk:
        raise TenantNotSet("records_ingest must run inside tenant_context(tenant).")
    total = sum(len(batch.get(key) or ()) for key in BATCH_KEYS.values())
    limit = settings.INGEST_MAX_BATCH_ROWS
    if total > limit:
        raise PublicError(
            f"A batch may hold at most {limit} rows in total; this one has {total}.",
            code=ErrorCode.BATCH_TOO_LARGE,
        )
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise PublicError(
            "The idempotency key must have 1 to 200 characters.", field="idempotencyKey"
        )
    with transaction.atomic():
        _lock_tenant_ingestion(tenant)
        request_hash = _batch_hash(batch)
        if idempotency_key is not None:
            previous = IngestionRequest.objects.filter(key=idempotency_key).first()
            if previous is not None:
                if previous.request_hash != request_hash:
                    raise PublicError(
                        "This idempotency key was already used for a different batch.",
                        code=ErrorCode.CONFLICT,
                        field="idempotencyKey",
                    )
                return IngestResult.from_json(previous.response, replayed=True)
        result = _Ingestion(tenant=tenant, batch=batch, actor_label=actor_label).run()
        if idempotency_key is not None:
            IngestionRequest.objects.create(
                tenant=tenant,
                key=idempotency_key,
                request_hash=request_hash,
                response=result.to_json(),
            )
    return result


def _lock_tenant_ingestion(tenant: Tenant) -> None:
    # TRICKY: rows are classified (new / changed / unchanged) and stage histories merged
    # against what is stored; two batches of one tenant at once would both see a row as
    # new (unique-constraint error) or validate histories against a stale state. One
    # ingestion per tenant at a time, until the transaction ends. SQLite serialises writes.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_LOCK_CLASS, tenant.pk]
            )


def _batch_hash(batch: dict[str, Any]) -> str:
    canonical = json.dumps(batch, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


MONEY_PLACES = Decimal("0.01")
MONEY_MAX_DIGITS = 16


class _Row:
    """Reads one row's fields, collecting every problem as a RowError."""

    def __init__(self, kind: IngestKind, index: int, row: Any):
        self.kind = kind
        self.index = index
        self.errors: list[RowError] = []
        if isinstance(row, dict):
            self.data: dict[str, Any] = row
        else:
            self.data = {}
            self.fail(None, RowErrorCode.INVALID, "A row must be an object.")

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, key: str | None, code: RowErrorCode, message: str) -> None:
        self.errors.append(
            RowError(self.kind, self.index, _camel(key) if key else None, code, message)
        )

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, RowErrorCode.REQUIRED, "This field is required.")
            return None
        return value

    def text(self, key: str, *, max_length: int, required: bool = False) -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(key, RowErrorCode.INVALID, "Expected a string.")
            return ""
        if len(value) > max_length:
            self.fail(key, RowErrorCode.TOO_LONG, f"At most {max_length} characters.")
        return value

    def integer(self, key: str, *, minimum: int | None = None) -> int | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, RowErrorCode.INVALID, "Expected an integer.")
            return None
        if minimum is not None and value < minimum:
            self.fail(key, RowErrorCode.NEGATIVE, f"Must be at least {minimum}.")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, RowErrorCode.INVALID, "Expected true or false.")
            return default
        return value

    def choice(self, key: str, choices: Iterable[str], *, required: bool = False) -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        allowed = list(choices)
        if value not in allowed:
            self.fail(key, RowErrorCode.INVALID_CHOICE, f"Expected one of: {', '.join(allowed)}.")
            return ""
        return value

    def moment(self, key: str, *, required: bool = False) -> dt.datetime | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            parsed = value
        else:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except (TypeError, ValueError):
                self.fail(key, RowErrorCode.INVALID_DATETIME, "Expected an ISO 8601 date-time.")
                return None
        if timezone.is_naive(parsed):
            self.fail(
                key, RowErrorCode.NAIVE_DATETIME, "Give the time zone offset (e.g. +09:00 or Z)."
            )
            return None
        return parsed

    def money(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.fail(key, RowErrorCode.INVALID, "Expected a decimal number as a string.")
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite():
            self.fail(key, RowErrorCode.INVALID, "Expected a decimal number.")
            return None
        if amount < 0:
            self.fail(key, RowErrorCode.NEGATIVE, "Must not be negative.")
            return None
        if amount != amount.quantize(MONEY_PLACES) or len(
            amount.quantize(MONEY_PLACES).as_tuple().digits
        ) > (MONEY_MAX_DIGITS):
            self.fail(key, RowErrorCode.INVALID, "At most 14 digits and 2 decimal places.")
            return None
        return amount.quantize(MONEY_PLACES)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, RowErrorCode.INVALID, "Expected an object.")
            return {}
        return value


def _same(obj: models.Model, values: dict[str, Any]) -> bool:
    return all(getattr(obj, name) == value for name, value in values.items())


class _Ingestion:
    """One batch: parse, resolve references, classify against stored rows, bulk write."""

    def __init__(self, *, tenant: Tenant, batch: dict[str, Any], actor_label: str):
        self.tenant = tenant
        self.batch = batch
        self.actor_label = actor_label[:150]
        self.source_system = str(batch.get("source_system") or "")[:50]
        self.result = IngestResult()
        self.dirty: list[dt.datetime | None] = []
        self.lead_ids: dict[str, int] = {}
        self.deal_ids: dict[str, int] = {}
        self._members_by_email: dict[str, int | None] | None = None
        self._members_by_username: dict[str, int] | None = None
        # Deal stage changes to insert, keyed like their unique constraint.
        self.pending_deal_changes: dict[tuple[int, int, dt.datetime], DealStageChange] = {}
        self.now = timezone.now()

    # --- plumbing -------------------------------------------------------------------

    def rows(self, kind: IngestKind) -> list[Any]:
        rows = self.batch.get(BATCH_KEYS[kind]) or []
        return list(rows)

    def reject(self, row: _Row) -> None:
        self.result.row_errors.extend(row.errors)
        self.result.counts[row.kind].rejected += 1

    def counts(self, kind: IngestKind) -> KindCounts:
        return self.result.counts[kind]

    def _load_members(self) -> None:
        by_email: dict[str, int | None] = {}
        by_username: dict[str, int] = {}
        for pk, email, username in Membership.objects.values_list(
            "pk", "user__email", "user__username"
        ):
            if email:
                # Two members sharing an e-mail make it ambiguous: refer by username then.
                by_email[email.lower()] = None if email.lower() in by_email else pk
            by_username[username] = pk
        self._members_by_email, self._members_by_username = by_email, by_username

    def member(self, row: _Row, prefix: str) -> int | None:
        """The Membership id for `<prefix>_email` / `<prefix>_username`, or None if not sent."""
        email = row.text(f"{prefix}_email", max_length=254)
        username = row.text(f"{prefix}_username", max_length=150)
        if not email and not username:
            return None
        if self._members_by_email is None:
            self._load_members()
        assert self._members_by_email is not None and self._members_by_username is not None
        pk = (
            self._members_by_email.get(email.lower())
            if email
            else self._members_by_username.get(username)
        )
        if pk is None:
            key = f"{prefix}_email" if email else f"{prefix}_username"
            row.fail(key, RowErrorCode.UNKNOWN_REFERENCE, "No member of this workspace matches.")
        return pk

    def resolve_leads(self, external_ids: Iterable[str]) -> None:
        missing = {ext for ext in external_ids if ext and ext not in self.lead_ids}
        if missing:
            self.lead_ids.update(
                Lead.objects.filter(
                    source_system=self.source_system, external_id__in=missing
                ).values_list("external_id", "pk")
            )

    def lead_ref(self, row: _Row, key: str = "lead_external_id") -> int | None:
        external_id = row.text(key, max_length=200, required=True)
        if not external_id:
            return None
        pk = self.lead_ids.get(external_id)
        if pk is None:
            row.fail(key, RowErrorCode.UNKNOWN_REFERENCE, "No lead has this externalId.")
        return pk

    def upsert(
        self, model: type[models.Model], new: list[Any], changed: list[Any], fields: list[str]
    ) -> None:
        if new:
            model.objects.bulk_create(new, batch_size=1000)  # type: ignore[attr-defined]
        if changed:
            # NOTE: the external-id constraint is partial (external_id IS NOT NULL), which
            # ON CONFLICT cannot target through the ORM; changed rows are upserted on their
            # primary key instead (we hold the tenant's ingestion lock, so no race).
            model.objects.bulk_create(  # type: ignore[attr-defined]
                changed,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=fields,
            )

    # --- the steps ------------------------------------------------------------------

    def run(self) -> IngestResult:
        self.ingest_leads()
        self.ingest_activities()
        self.ingest_deals()
        self.ingest_lead_stage_changes()
        self.ingest_deal_stage_changes()
        mark_days_dirty(tenant=self.tenant, datetimes=self.dirty)
        self.result.row_errors.sort(key=lambda e: (list(IngestKind).index(e.kind), e.index))
        return self.result

    def _parse(self, kind: IngestKind, parse: Any) -> list[tuple[str, dict[str, Any]]]:
        """Parse every row of `kind`; the first row of an external id wins, later ones fail."""
        parsed: list[tuple[str, dict[str, Any]]] = []
        first_index: dict[str, int] = {}
        for index, raw in enumerate(self.rows(kind)):
            row = _Row(kind, index, raw)
            external_id = row.text("external_id", max_length=200, required=True)
            values = parse(row)
            if external_id:
                first = first_index.setdefault(external_id, index)
                if first != index:
                    row.fail(
                        "external_id", RowErrorCode.DUPLICATE, f"Same externalId as row {first}."
                    )
            if row.ok:
                parsed.append((external_id, values))
            else:
                self.reject(row)
        return parsed

    def _classify(
        self,
        kind: IngestKind,
        model: type[models.Model],
        parsed: list[tuple[str, dict[str, Any]]],
        dirty_fields: tuple[str, ...],
    ) -> tuple[list[Any], list[Any], dict[str, models.Model]]:
        existing = {
            obj.external_id: obj  # type: ignore[attr-defined]
            for obj in model.objects.filter(  # type: ignore[attr-defined]
                source_system=self.source_system,
                external_id__in=[external_id for external_id, _ in parsed],
            )
        }
        counts = self.counts(kind)
        new, changed = [], []
        for external_id, values in parsed:
            obj = existing.get(external_id)
            if obj is None:
                obj = model(
                    tenant=self.tenant,
                    source_system=self.source_system,
                    external_id=external_id,
                    **values,
                )
                new.append(obj)
                counts.created += 1
            elif _same(obj, values):
                counts.unchanged += 1
                continue
            else:
                self.dirty.extend(getattr(obj, name) for name in dirty_fields)
                for name, value in values.items():
                    setattr(obj, name, value)
                changed.append(obj)
                counts.updated += 1
            self.dirty.extend(getattr(obj, name) for name in dirty_fields)
        return new, changed, existing

    def ingest_leads(self) -> None:
        teams: dict[str, int] | None = None

        def parse(row: _Row) -> dict[str, Any]:
            nonlocal teams
            values = {
                "company": row.text("company", max_length=200, required=True),
                "contact_name": row.text("contact_name", max_length=200),
                "email": row.text("email", max_length=254),
                "industry": row.text("industry", max_length=100),
                "employee_count": row.integer("employee_count", minimum=0),
                "title": row.text("title", max_length=150),
                "attributes": row.mapping("attributes"),
                "source": row.text("source", max_length=50),
                "score": row.integer("score") or 0,
                "created_at": row.moment("created_at", required=True),
                "owner_id": self.member(row, "owner"),
                "team_id": None,
            }
            team_name = row.text("team_name", max_length=100)
            if team_name:
                if teams is None:
                    teams = dict(Team.objects.values_list("name", "pk"))
                values["team_id"] = teams.get(team_name)
                if values["team_id"] is None:
                    row.fail("team_name", RowErrorCode.UNKNOWN_REFERENCE, "No team has this name.")
            return values

        parsed = self._parse(IngestKind.LEAD, parse)
        if not parsed:
            return
        new, changed, existing = self._classify(IngestKind.LEAD, Lead, parsed, ("created_at",))
        fields = [*parsed[0][1].keys(), "updated_at"]
        self.upsert(Lead, new, changed, fields)
        self.lead_ids.update((obj.external_id, obj.pk) for obj in existing.values())
        self.lead_ids.update((obj.external_id, obj.pk) for obj in new)

    def ingest_activities(self) -> None:
        self.resolve_leads(
            row.get("lead_external_id")
            for row in self.rows(IngestKind.ACTIVITY)
            if isinstance(row, dict) and isinstance(row.get("lead_external_id"), str)
        )

        def parse(row: _Row) -> dict[str, Any]:
            return {
                "lead_id": self.lead_ref(row),
                "rep_id": self.member(row, "rep"),
                "type": row.choice("type", Activity.Type.values, required=True),
                "occurred_at": row.moment("occurred_at", required=True),
                "call_outcome": row.choice("call_outcome", Activity.CallOutcome.values),
                "email_delivered": row.boolean("email_delivered", default=False),
                "email_opened": row.boolean("email_opened", default=False),
                "email_clicked": row.boolean("email_clicked", default=False),
                "duration_seconds": row.integer("duration_seconds", minimum=0),
            }

        parsed = self._parse(IngestKind.ACTIVITY, parse)
        if not parsed:
            return
        new, changed, _ = self._classify(IngestKind.ACTIVITY, Activity, parsed, ("occurred_at",))
        self.upsert(Activity, new, changed, list(parsed[0][1].keys()))

    def ingest_deals(self) -> None:
        self.resolve_leads(
            row.get("lead_external_id")
            for row in self.rows(IngestKind.DEAL)
            if isinstance(row, dict) and isinstance(row.get("lead_external_id"), str)
        )
        stages = {stage.name: stage for stage in DealStage.objects.all()}
        # Deals whose history this batch sends explicitly get no implied stage change.
        with_history = {
            row.get("deal_external_id")
            for row in self.rows(IngestKind.DEAL_STAGE_CHANGE)
            if isinstance(row, dict)
        }

        def parse(row: _Row) -> dict[str, Any]:
            stage_name = row.text("stage_name", max_length=100, required=True)
            stage = stages.get(stage_name)
            if stage_name and stage is None:
                row.fail(
                    "stage_name", RowErrorCode.UNKNOWN_REFERENCE, "No deal stage has this name."
                )
            currency = row.text("currency", max_length=3) or self.tenant.currency
            if len(currency) != 3 or not currency.isalpha():
                row.fail("currency", RowErrorCode.INVALID, "Expected a 3-letter ISO 4217 code.")
            return {
                "lead_id": self.lead_ref(row),
                "name": row.text("name", max_length=200),
                "amount": row.money("amount", required=True),
                "currency": currency.upper(),
                "stage_id": stage.pk if stage else None,
                "owner_id": self.member(row, "owner"),
                "sourced_by_is": row.boolean("sourced_by_is", default=True),
                "created_at": row.moment("created_at", required=True),
                "closed_at": row.moment("closed_at"),
            }

        parsed = self._parse(IngestKind.DEAL, parse)
        if not parsed:
            return
        stored = {
            external_id: (pk, stage_id)
            for external_id, pk, stage_id in Deal.objects.filter(
                source_system=self.source_system, external_id__in=[e for e, _ in parsed]
            ).values_list("external_id", "pk", "stage_id")
        }
        stored_stage = dict(stored.values())
        fields = list(parsed[0][1].keys())
        for external_id, values in parsed:
            if external_id in stored and external_id in with_history:
                # The stage history sent along decides a stored deal's stage and closing.
                del values["stage_id"], values["closed_at"]
        new, changed, existing = self._classify(
            IngestKind.DEAL, Deal, parsed, ("created_at", "closed_at")
        )
        self.upsert(Deal, new, changed, fields)
        self.deal_ids.update((obj.external_id, obj.pk) for obj in existing.values())
        self.deal_ids.update((obj.external_id, obj.pk) for obj in new)
        by_pk = {stage.pk: stage for stage in stages.values()}
        moved = [deal for deal in changed if stored_stage.get(deal.pk) != deal.stage_id]
        for deal, is_new in [(deal, True) for deal in new] + [(deal, False) for deal in moved]:
            if deal.external_id in with_history:
                continue
            if by_pk[deal.stage_id].is_closed and deal.closed_at:
                at = deal.closed_at
            else:
                # NOTE: a stage changed by the deal row itself happened when we learned it.
                at = deal.created_at if is_new else self.now
            change = DealStageChange(tenant=self.tenant, deal=deal, stage_id=deal.stage_id, at=at)
            self.pending_deal_changes[(deal.pk, deal.stage_id, at)] = change
            self.dirty.append(at)

    def ingest_lead_stage_changes(self) -> None:
        kind = IngestKind.LEAD_STAGE_CHANGE
        self.resolve_leads(
            row.get("lead_external_id")
            for row in self.rows(kind)
            if isinstance(row, dict) and isinstance(row.get("lead_external_id"), str)
        )
        incoming: dict[int, list[tuple[_Row, str, dt.datetime, str]]] = defaultdict(list)
        seen: dict[tuple[int, str, dt.datetime], int] = {}
        for index, raw in enumerate(self.rows(kind)):
            row = _Row(kind, index, raw)
            lead_id = self.lead_ref(row)
            to_stage = row.choice("to_stage", Stage.values, required=True)
            at = row.moment("at", required=True)
            reason = row.text("reason", max_length=500)
            if row.ok:
                assert lead_id is not None and at is not None
                first = seen.setdefault((lead_id, to_stage, at), index)
                if first != index:
                    row.fail("at", RowErrorCode.DUPLICATE, f"Same change as row {first}.")
            if row.ok:
                incoming[lead_id].append((row, to_stage, at, reason))  # type: ignore[index]
            else:
                self.reject(row)
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
        counts = self.counts(kind)
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
            for row, to_stage, at, reason in changes:
                if (to_stage, at) in stored_keys:
                    counts.unchanged += 1
                    continue
                timeline.append((at, 1, row.index, (row, to_stage, at, reason)))
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
                row, to_stage, at, reason = item
                if not is_allowed(current, to_stage):
                    row.fail(
                        "to_stage",
                        RowErrorCode.INVALID_TRANSITION,
                        f"A lead cannot go from {current} to {to_stage} (at {at.isoformat()}).",
                    )
                    self.reject(row)
                    continue
                new.append(
                    StageTransition(
                        tenant=self.tenant,
                        lead_id=lead_id,
                        from_stage=current,
                        to_stage=to_stage,
                        at=at,
                        actor_label=self.actor_label,
                        reason=reason,
                        owner_id=owner_id,
                        team_id=team_id,
                    )
                )
                counts.created += 1
                accepted = True
                self.dirty.append(at)
                current = to_stage
            if accepted and current != leads[lead_id][0]:
                final_stage[lead_id] = current
        StageTransition.objects.bulk_create(new, batch_size=1000)
        if refrom:
            StageTransition.objects.bulk_update(refrom, ["from_stage"], batch_size=500)
        by_stage: dict[str, list[int]] = defaultdict(list)
        for lead_id, stage in final_stage.items():
            by_stage[stage].append(lead_id)
        for stage, lead_ids in by_stage.items():
            Lead.objects.filter(pk__in=lead_ids).update(stage=stage, updated_at=self.now)

    def ingest_deal_stage_changes(self) -> None:
        kind = IngestKind.DEAL_STAGE_CHANGE
        refs = {
            row.get("deal_external_id")
            for row in self.rows(kind)
            if isinstance(row, dict) and isinstance(row.get("deal_external_id"), str)
        }
        missing = {ext for ext in refs if ext and ext not in self.deal_ids}
        if missing:
            self.deal_ids.update(
                Deal.objects.filter(
                    source_system=self.source_system, external_id__in=missing
                ).values_list("external_id", "pk")
            )
        stages = {stage.name: stage for stage in DealStage.objects.all()}
        parsed: list[tuple[_Row, int, int, dt.datetime]] = []
        seen: dict[tuple[int, int, dt.datetime], int] = {}
        for index, raw in enumerate(self.rows(kind)):
            row = _Row(kind, index, raw)
            external_id = row.text("deal_external_id", max_length=200, required=True)
            deal_id = self.deal_ids.get(external_id) if external_id else None
            if external_id and deal_id is None:
                row.fail(
                    "deal_external_id",
                    RowErrorCode.UNKNOWN_REFERENCE,
                    "No deal has this externalId.",
                )
            stage_name = row.text("stage_name", max_length=100, required=True)
            stage = stages.get(stage_name)
            if stage_name and stage is None:
                row.fail(
                    "stage_name", RowErrorCode.UNKNOWN_REFERENCE, "No deal stage has this name."
                )
            at = row.moment("at", required=True)
            if row.ok:
                assert deal_id is not None and stage is not None and at is not None
                first = seen.setdefault((deal_id, stage.pk, at), index)
                if first != index:
                    row.fail("at", RowErrorCode.DUPLICATE, f"Same change as row {first}.")
            if row.ok:
                parsed.append((row, deal_id, stage.pk, at))  # type: ignore[arg-type,union-attr]
            else:
                self.reject(row)
        deal_ids = {deal_id for _, deal_id, _, _ in parsed} | {
            key[0] for key in self.pending_deal_changes
        }
        if not deal_ids:
            return
        history: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
        stored = set()
        for deal_id, stage_id, at in DealStageChange.objects.filter(
            deal_id__in=deal_ids
        ).values_list("deal_id", "stage_id", "at"):
            stored.add((deal_id, stage_id, at))
            history[deal_id].append((at, stage_id))
        counts = self.counts(kind)
        for _row, deal_id, stage_id, at in parsed:
            key = (deal_id, stage_id, at)
            if key in stored:
                counts.unchanged += 1
                continue
            counts.created += 1
            self.pending_deal_changes.setdefault(
                key, DealStageChange(tenant=self.tenant, deal_id=deal_id, stage_id=stage_id, at=at)
            )
        new = [change for key, change in self.pending_deal_changes.items() if key not in stored]
        for change in new:
            history[change.deal_id].append((change.at, change.stage_id))
            self.dirty.append(change.at)
        DealStageChange.objects.bulk_create(new, batch_size=1000)
        # The deal ends in the stage of its latest change; won/lost stages close it then.
        by_pk = {stage.pk: stage for stage in stages.values()}
        touched = {change.deal_id for change in new}
        deals = Deal.objects.filter(pk__in=touched).only("pk", "stage_id", "closed_at")
        updates = []
        for deal in deals:
            at, stage_id = max(history[deal.pk], key=lambda item: item[0])
            closed_at = at if by_pk[stage_id].is_closed else None
            if (deal.stage_id, deal.closed_at) != (stage_id, closed_at):
                self.dirty.append(deal.closed_at)
                self.dirty.append(closed_at)
                deal.stage_id, deal.closed_at = stage_id, closed_at
                updates.append(deal)
        if updates:
            Deal.objects.bulk_update(updates, ["stage", "closed_at"], batch_size=500)
