"""The state the steps of one batch share: its rows, references, result and dirty times."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from pipeline.bounds import is_clean_text
from pipeline.ingestion.fields import Errors, Field, Fields, Naming
from pipeline.ingestion.results import BATCH_KEYS, IngestKind, IngestResult, KindCounts, RowError
from pipeline.ingestion.upsert import external_id_in
from pipeline.models import Deal, DealStage, DealStageChange, DirtyKind, Lead
from tenants.models import Membership, Team, Tenant

EXTERNAL_ID_MAX = 200


class Batch:
    """One batch being ingested; references are loaded once, in bulk, when first needed."""

    def __init__(self, *, tenant: Tenant, batch: dict[str, Any], actor_label: str, naming: Naming):
        self.tenant = tenant
        self.batch = batch
        self.now = timezone.now()
        self.fields = Fields(naming, now=self.now)
        self.actor_label = actor_label[:150]
        # NOTE: records_ingest has refused a source system that is not bounded text.
        self.source_system = str(batch.get("source_system") or "")
        self.result = IngestResult()
        # The times of written rows, per kind of measure they move: their days are dirty.
        self.dirty: dict[DirtyKind, list[dt.datetime | None]] = defaultdict(list)
        # New activities (id, occurred_at): their days count just them.
        self.added_activities: list[tuple[int, dt.datetime]] = []
        # Days whose rows were changed, not only added, and leads whose source or owner
        # changed: their KPI periods recount distinct members from raw rows.
        self.rescan: list[dt.datetime | None] = []
        self.reattributed_leads: set[int] = set()
        self.lead_ids: dict[str, int] = {}
        self.deal_ids: dict[str, int] = {}
        # Deal stage changes to insert, keyed like their unique constraint.
        self.pending_deal_changes: dict[tuple[int, int, dt.datetime], DealStageChange] = {}
        self._members: tuple[dict[str, int | None], dict[str, int]] | None = None
        self._teams: dict[str, int] | None = None
        self._deal_stages: dict[str, DealStage] | None = None
        self._deal_stage_ids: dict[str, int] | None = None

    def rows(self, kind: IngestKind) -> list[Any]:
        return list(self.batch.get(BATCH_KEYS[kind]) or ())

    def counts(self, kind: IngestKind) -> KindCounts:
        return self.result.counts[kind]

    def reject(self, kind: IngestKind, index: int, errors: Errors) -> None:
        self.result.row_errors.extend(
            RowError(kind, index, field, code, message) for field, code, message in errors
        )
        self.result.counts[kind].rejected += 1

    def texts(self, kind: IngestKind, name: str) -> set[str]:
        """The non-empty string values of field `name` in the rows of `kind` that may be
        looked up in SQL (an external id; a longer or unstorable one is a row error)."""
        key = self.fields.key(name)
        values = set()
        for row in self.rows(kind):
            if isinstance(row, dict):
                value = row.get(key)
                if value and is_clean_text(value, EXTERNAL_ID_MAX):
                    values.add(value)
        return values

    # --- references, each loaded with one query -------------------------------------------

    def members(self) -> tuple[dict[str, int | None], dict[str, int]]:
        """Membership ids by lower-cased e-mail (None when two share one) and by username."""
        if self._members is None:
            by_email: dict[str, int | None] = {}
            by_username: dict[str, int] = {}
            for pk, email, username in Membership.objects.values_list(
                "pk", "user__email", "user__username"
            ):
                if email:
                    # Two members sharing an e-mail make it ambiguous: refer by username then.
                    by_email[email.lower()] = None if email.lower() in by_email else pk
                by_username[username] = pk
            self._members = (by_email, by_username)
        return self._members

    def teams(self) -> dict[str, int]:
        if self._teams is None:
            self._teams = dict(Team.objects.values_list("name", "pk"))
        return self._teams

    def deal_stages(self) -> dict[str, DealStage]:
        if self._deal_stages is None:
            self._deal_stages = {stage.name: stage for stage in DealStage.objects.all()}
        return self._deal_stages

    def deal_stage_ids(self) -> dict[str, int]:
        if self._deal_stage_ids is None:
            self._deal_stage_ids = {name: stage.pk for name, stage in self.deal_stages().items()}
        return self._deal_stage_ids

    def resolve_leads(self, kind: IngestKind) -> None:
        """Load the ids of the leads that rows of `kind` refer to and are not known yet."""
        self._resolve(Lead, self.lead_ids, self.texts(kind, "lead_external_id"))

    def resolve_deals(self, kind: IngestKind) -> None:
        self._resolve(Deal, self.deal_ids, self.texts(kind, "deal_external_id"))

    def _resolve(
        self, model: type[Lead | Deal], known: dict[str, int], refs: Iterable[str]
    ) -> None:
        missing = [ref for ref in refs if ref not in known]
        if missing:
            known.update(
                model.objects.filter(
                    external_id_in(missing), source_system=self.source_system
                ).values_list("external_id", "pk")
            )

    def lead_reference(self) -> Field:
        """A row's `leadExternalId`, read as the id of a lead stored before or in this batch."""
        return self.fields.reference(
            "lead_id",
            key_name="lead_external_id",
            lookup=lambda: self.lead_ids,
            message="No lead has this externalId.",
            max_length=EXTERNAL_ID_MAX,
            required=True,
        )
