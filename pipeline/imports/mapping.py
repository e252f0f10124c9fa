"""A CRM export's line as our records: the tenant's preset (built-in defaults plus its own
ImportPreset overrides), header resolution, local times, stages, owners and values."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipeline.bounds import INTEGER_TEXT
from pipeline.defaults import DEFAULT_DEAL_STAGES, default_deal_stages
from pipeline.imports.models import ImportPreset
from pipeline.imports.presets import PRESETS, Preset
from pipeline.ingestion.results import IngestKind
from pipeline.lifecycle import FUNNEL_ORDER, Stage
from pipeline.models import DealStage
from tenants.errors import PublicError
from tenants.models import Membership, Tenant

# Naive times as the exporters write them; an offset or Z (Data Loader) is read as given.
_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M",  # HubSpot
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M",  # Salesforce report, Japanese locale (2026/11/02 9:30)
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %I:%M %p",  # Salesforce report, en_US locale (11/2/2026 9:30 AM)
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d",  # dates alone: the start of that local day
    "%Y/%m/%d",
    "%m/%d/%Y",
)
_MAX_DATE_TEXT = 40
# Lifecycle stages in the order a lead passes them; a contact at a later stage gets the
# transitions up to it (our lifecycle moves one step at a time).
_LIFECYCLE_DATES = {
    "mql": "mql_at",
    "sql": "sql_at",
    "opportunity": "opportunity_at",
    "won": "won_at",
}


def norm(text: str) -> str:
    """A header or value compared ignoring case, blanks around it and a UTF-8 BOM."""
    return text.strip().lstrip("\ufeff").strip().casefold()


@dataclass
class Config:
    """A tenant's preset, merged over the built-in one it starts from."""

    name: str
    preset: Preset
    source_system: str
    zone: zoneinfo.ZoneInfo
    columns: dict[str, str]  # their header (normalised) → our field, overrides
    stages: dict[str, str]
    owners: dict[str, str]
    values: dict[str, dict[str, str]]

    def fingerprint(self) -> str:
        """What the mapping depends on: a changed preset never replays an earlier import."""
        content = {
            "preset": self.preset.name,
            "source_system": self.source_system,
            "zone": self.zone.key,
            "columns": self.columns,
            "stages": self.stages,
            "owners": self.owners,
            "values": self.values,
        }
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(encoded).hexdigest()


def _text_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PublicError(f"The preset's {what} must map texts to texts.", field=what)
    return {norm(k): v.strip() for k, v in value.items()}


def import_config_load(*, tenant: Tenant, name: str, time_zone: str | None = None) -> Config:
    """The preset `name` of the tenant in context: its ImportPreset, else the built-in one.

    Raises PublicError for an unknown preset or zone, or mappings of the wrong shape.
    """
    row = ImportPreset.objects.filter(name=name).first()
    base = PRESETS.get(row.kind if row is not None else name)
    if base is None:
        known = ", ".join(sorted(PRESETS))
        raise PublicError(f"No preset {name!r}; the built-in ones are: {known}.", field="preset")
    zone_name = time_zone or (row.time_zone if row is not None else "") or tenant.timezone
    if zone_name not in zoneinfo.available_timezones():
        raise PublicError(f"Unknown time zone {zone_name!r}.", field="timeZone")
    values = {key: dict(mapping) for key, mapping in base.values.items()}
    if row is not None:
        if not isinstance(row.values, dict):
            raise PublicError("The preset's values must map fields to mappings.", field="values")
        for key, mapping in row.values.items():
            values.setdefault(str(key), {}).update(_text_map(mapping, "values"))
    return Config(
        name=name,
        preset=base,
        source_system=(row.source_system if row is not None else "") or base.source_system,
        zone=zoneinfo.ZoneInfo(zone_name),
        columns=_text_map(row.columns, "columns") if row is not None else {},
        stages={
            **_in_language(base.stages, tenant.language),
            **(_text_map(row.stages, "stages") if row is not None else {}),
        },
        owners=_text_map(row.owners, "owners") if row is not None else {},
        values=values,
    )


def _in_language(stages: dict[str, str], language: str) -> dict[str, str]:
    """The built-in stage mapping for a workspace whose default deal stages are named in
    `language`: the Japanese default names it targets become that language's."""
    names = dict(
        zip(
            (stage[0] for stage in DEFAULT_DEAL_STAGES),
            (stage[0] for stage in default_deal_stages(language)),
            strict=True,
        )
    )
    return {text: names.get(target, target) for text, target in stages.items()}


def header_resolve(config: Config, header: list[str]) -> dict[str, int]:
    """Our field → the position of its column; raises PublicError when a required one lacks.

    A tenant's column override wins over the built-in candidates; other columns are ignored
    (exports carry many we do not use).
    """
    positions: dict[str, int] = {}
    normalised = [norm(name) for name in header]
    for position, name in enumerate(normalised):
        target = config.columns.get(name)
        if target and target not in positions:
            positions[target] = position
    for target, candidates in config.preset.columns.items():
        if target in positions:
            continue
        for candidate in candidates:
            if norm(candidate) in normalised:
                positions[target] = normalised.index(norm(candidate))
                break
    missing = [target for target in config.preset.required if target not in positions]
    if missing:
        wanted = [
            f"{target} ({' / '.join(config.preset.columns[target][:2])})" for target in missing
        ]
        raise PublicError(
            f"Missing columns for {config.preset.name}: {', '.join(wanted)}. Map them in the "
            "preset's columns if the export names them otherwise.",
            field="file",
        )
    return positions


class LineRefused(Exception):
    """A line that cannot be mapped (its message names the column and the problem)."""


@dataclass
class Mapper:
    """Maps lines of one file; references (members, deal stages) are loaded once."""

    config: Config
    tenant: Tenant
    positions: dict[str, int]
    header: list[str]
    _members: dict[str, str] | None = None
    _closed_stages: set[str] | None = None
    skipped: int = field(default=0)

    def column(self, target: str) -> str:
        position = self.positions.get(target)
        return self.header[position].strip() if position is not None else target

    def map(self, cells: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The batch rows of one line (by batch key); {} for a line the preset skips."""
        values = {
            target: cells[position].strip()
            for target, position in self.positions.items()
            if position < len(cells) and cells[position].strip()
        }
        kind = self.config.preset.kind
        if kind is IngestKind.LEAD:
            return self._lead(values)
        if kind is IngestKind.ACTIVITY:
            return {"activities": [self._activity(values)]}
        if kind is IngestKind.DEAL:
            return {"deals": [self._deal(values)]}
        return self._stage_change(values)

    # --- kinds ----------------------------------------------------------------------------

    def _lead(self, values: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        name = " ".join(v for v in (values.get("last_name"), values.get("first_name")) if v)
        created_at = self._moment(values, "created_at")
        lead: dict[str, Any] = {
            "external_id": values.get("external_id"),
            # NOTE: a person without a company (B2C-like contacts) is still a lead: their
            # name stands for the company, which our records require.
            "company": values.get("company") or name or values.get("email"),
            "contact_name": name or None,
            "email": values.get("email"),
            "industry": values.get("industry"),
            "employee_count": self._integer(values, "employee_count"),
            "title": values.get("title"),
            "source": values.get("source"),
            "created_at": created_at,
            **self._owner(values, "owner"),
        }
        attributes = self._attributes(values)
        if attributes:
            lead["attributes"] = attributes
        lead = {key: value for key, value in lead.items() if value is not None}
        changes = []
        stage = self._lifecycle(values)
        if stage is not None and created_at is not None:
            at = created_at
            for step in _lifecycle_path(stage):
                date_field = _LIFECYCLE_DATES.get(step)
                if date_field and values.get(date_field):
                    at = max(at, self._moment(values, date_field) or at)
                changes.append(
                    {"lead_external_id": lead.get("external_id"), "to_stage": step, "at": at}
                )
        return {"leads": [lead], "lead_stage_changes": changes}

    def _activity(self, values: dict[str, str]) -> dict[str, Any]:
        activity_type = self._value(values, "type")
        outcome = values.get("call_outcome")
        row: dict[str, Any] = {
            "external_id": values.get("external_id"),
            "lead_external_id": _first_id(values.get("lead_external_id")),
            "type": activity_type,
            "occurred_at": self._moment(values, "occurred_at"),
            **self._owner(values, "rep"),
        }
        if outcome and activity_type == "call":
            # NOTE: Salesforce's call result is free text: what no mapping names is "other".
            row["call_outcome"] = self._value(values, "call_outcome", fallback="other")
        duration = _duration(values.get("duration"))
        if values.get("duration") and duration is None:
            raise LineRefused(f"{self.column('duration')}: expected seconds or H:MM:SS.")
        if duration is not None:
            row["duration_seconds"] = duration
        return {key: value for key, value in row.items() if value is not None}

    def _deal(self, values: dict[str, str]) -> dict[str, Any]:
        stage_name = self._deal_stage(values.get("stage", ""))
        row: dict[str, Any] = {
            "external_id": values.get("external_id"),
            "lead_external_id": _first_id(values.get("lead_external_id")),
            "name": values.get("name"),
            "amount": _amount(values.get("amount", "")),
            "stage_name": stage_name,
            "currency": values.get("currency"),
            "created_at": self._moment(values, "created_at"),
            **self._owner(values, "owner"),
        }
        # NOTE: an open deal's close date is only expected: it closes when its stage does.
        if stage_name in self.closed_stages() and values.get("closed_at"):
            row["closed_at"] = self._moment(values, "closed_at")
        return {key: value for key, value in row.items() if value is not None}

    def _stage_change(self, values: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        if self._value(values, "field", fallback="") != "stage":
            self.skipped += 1
            return {}
        return {
            "deal_stage_changes": [
                {
                    "deal_external_id": values.get("deal_external_id"),
                    "stage_name": self._deal_stage(values.get("new_value", "")),
                    "at": self._moment(values, "at"),
                }
            ]
        }

    # --- values ---------------------------------------------------------------------------

    def _moment(self, values: dict[str, str], target: str) -> dt.datetime | None:
        text = values.get(target)
        if text is None:
            return None
        moment = parse_moment(text, self.config.zone)
        if moment is None:
            raise LineRefused(
                f"{self.column(target)}: {text[:_MAX_DATE_TEXT]!r} is not a date and time "
                "(e.g. 2026-11-02 09:30, 2026/11/02 9:30 or 2026-11-02T00:30:00Z)."
            )
        return moment

    def _integer(self, values: dict[str, str], target: str) -> int | str | None:
        text = values.get(target)
        if text is None:
            return None
        digits = text.replace(",", "")
        return int(digits) if INTEGER_TEXT.fullmatch(digits) else text  # refused downstream

    def _value(
        self, values: dict[str, str], target: str, *, fallback: str | None = None
    ) -> str | None:
        text = values.get(target)
        if text is None:
            return fallback
        mapped = self.config.values.get(target, {}).get(norm(text))
        if mapped is not None:
            return mapped
        if fallback is not None:
            return fallback
        return text  # refused downstream with the allowed choices

    def _lifecycle(self, values: dict[str, str]) -> str | None:
        text = values.get("lifecycle_stage")
        if text is None:
            return None
        stage = self.config.stages.get(norm(text))
        if stage is None:
            if norm(text) in ("other", "その他"):
                return None
            raise LineRefused(
                f"{self.column('lifecycle_stage')}: {text[:100]!r} is not mapped to a lifecycle "
                "stage; add it to the preset's stages."
            )
        if stage not in Stage.values:
            raise LineRefused(f"The preset maps {text[:100]!r} to {stage!r}, not a stage.")
        return stage

    def _deal_stage(self, text: str) -> str:
        # Unmapped names pass as they are: a tenant whose deal stages carry its CRM's names
        # needs no mapping, and an unknown one is refused by the ingestion with its name.
        return self.config.stages.get(norm(text), text)

    def _owner(self, values: dict[str, str], target: str) -> dict[str, str]:
        text = values.get(target)
        if text is None:
            return {}
        email = self.config.owners.get(norm(text))
        if email:
            return {f"{target}_email": email}
        if "@" in text:
            return {f"{target}_email": text}
        username = self.members().get(norm(text))
        if username is not None:
            return {f"{target}_username": username}
        raise LineRefused(
            f"{self.column(target)}: no member is named {text[:100]!r}; map it to a member's "
            "e-mail in the preset's owners."
        )

    def _attributes(self, values: dict[str, str]) -> dict[str, str]:
        return {
            target.split(".", 1)[1]: value
            for target, value in values.items()
            if target.startswith("attributes.")
        }

    def members(self) -> dict[str, str]:
        """Usernames by display name (and by username): owners are named in exports."""
        if self._members is None:
            self._members = {}
            for display, username in Membership.objects.values_list(
                "display_name", "user__username"
            ):
                self._members[norm(username)] = username
                if display:
                    self._members.setdefault(norm(display), username)
                    # 山田 太郎 / 山田太郎 / 山田　太郎: exports differ in the blank.
                    self._members.setdefault(re.sub(r"\s+", "", norm(display)), username)
        return self._members

    def closed_stages(self) -> set[str]:
        if self._closed_stages is None:
            self._closed_stages = {
                name
                for name, won, lost in DealStage.objects.values_list("name", "is_won", "is_lost")
                if won or lost
            }
        return self._closed_stages


def parse_moment(text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """An exporter's date-time: with an offset as given, without one in `zone`."""
    text = text.strip()
    if len(text) > _MAX_DATE_TEXT or not text.isascii():
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        for pattern in _NAIVE_FORMATS:
            try:
                parsed = dt.datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def _lifecycle_path(stage: str) -> list[str]:
    """The transitions from `lead` to `stage`, one step at a time."""
    if stage == Stage.RECYCLED:
        return [Stage.RECYCLED]
    if stage == Stage.LOST:
        return [*FUNNEL_ORDER[1:5], Stage.LOST]
    return list(FUNNEL_ORDER[1 : FUNNEL_ORDER.index(stage) + 1])


def _first_id(text: str | None) -> str | None:
    """HubSpot lists associated ids separated by ';' (or ','): the first is the lead."""
    if not text:
        return None
    return re.split(r"[;,]", text)[0].strip() or None


def _amount(text: str) -> str | None:
    """An amount as exported (¥1,200,000 / 1200000.00 / JPY 1,200,000): digits for the ingestion."""
    cleaned = re.sub(r"^[A-Z]{3}\s*|[¥$€£,\s]", "", text.strip())
    if not cleaned:
        return None
    try:
        Decimal(cleaned)
    except ArithmeticError:
        return text  # refused downstream with the ingestion's message
    return cleaned


def _duration(text: str | None) -> int | None:
    if not text:
        return None
    if INTEGER_TEXT.fullmatch(text):
        return int(text)
    match = re.fullmatch(r"(\d{1,3}):(\d{2}):(\d{2})|(\d{1,3}):(\d{2})", text)
    if match is None:
        return None
    if match.group(1) is not None:
        return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3))
    return int(match.group(4)) * 60 + int(match.group(5))
