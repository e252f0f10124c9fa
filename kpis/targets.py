"""KPI targets: setting them (services), reading them, and suggesting one from own history.

A target is a manager's value for one KPI, period and scope. The suggestion beside it is the
tenant's own trailing history (自社データ): the KPI over the previous three periods of the
same grain combined, rates as summed numerators ÷ summed denominators (never an average of
rates) and counts as the average per period, next to the source article's reference value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.db.models import Q

from kpis.catalogue import KpiDefinition, Unit
from kpis.models import KpiTarget
from kpis.periods import Period, period_containing
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import (
    KpiValue,
    kpi_definition,
    kpi_definitions,
    kpi_values,
    period_filter,
    scope_filter,
)
from kpis.versions import kpi_read_version_bump
from tenants.bounds import shown
from tenants.context import current_tenant_id, tenant_context
from tenants.errors import NotFound, PublicError, ValidationFailed
from tenants.models import Membership, Team, Tenant

HISTORY_PERIODS = 3
MAX_DECIMALS = 4
# KpiTarget.value is a DecimalField(max_digits=24, decimal_places=4).
MAX_VALUE = Decimal(10) ** 20
MAX_TARGET_KPIS = 100  # a cap on the KPIs one read may ask for


def reading_context(tenant: Tenant) -> AbstractContextManager[None]:
    """The tenant's context for reads: nothing to open when the caller is already in it.

    NOTE: tenant_context always opens a transaction, so being in the tenant's context means
    being in its transaction; skipping a nested one saves a savepoint (and on PostgreSQL two
    set_config calls) per read. Writes keep their own savepoint so a refused write rolls back.
    """
    if current_tenant_id() == tenant.pk:
        return nullcontext()
    return tenant_context(tenant)


@dataclass(frozen=True)
class Suggestion:
    """A suggested target: the tenant's own trailing value beside the article's reference."""

    kpi: KpiDefinition
    period: Period
    scope: KpiScope
    own_value: Decimal | None
    reference_value: Decimal | None
    history_periods: tuple[Period, ...]
    basis: str


def history_periods(period: Period, count: int = HISTORY_PERIODS) -> tuple[Period, ...]:
    """The `count` periods of the same grain before `period`, the most recent first."""
    periods: list[Period] = []
    current = period
    for _ in range(count):
        current = current.previous()
        periods.append(current)
    return tuple(periods)


def history_fraction(kpi: KpiDefinition, values: Sequence[KpiValue]) -> Fraction | None:
    """The KPI over the history `values` combined, exactly.

    Rates: summed numerators ÷ summed denominators (x 100 for percentages), None for a zero
    summed denominator. Counts and money: the average per period; None when no period of the
    history has a snapshot (the tenant has no data there yet).
    """
    if not values:
        return None
    numerator = sum((Fraction(value.numerator) for value in values), Fraction(0))
    if kpi.is_rate:
        denominator = sum((Fraction(value.denominator or 0) for value in values), Fraction(0))
        if denominator == 0:
            return None
        return numerator * kpi.multiplier / denominator
    if all(value.computed_at is None for value in values):
        return None
    return numerator / len(values)


def as_decimal(value: Fraction | None) -> Decimal | None:
    """An exact fraction as a Decimal of the default context (28 significant digits)."""
    if value is None:
        return None
    return Decimal(value.numerator) / Decimal(value.denominator)


def _history_basis(kpi: KpiDefinition, periods: Sequence[Period]) -> str:
    labels = ", ".join(period.label for period in reversed(periods))
    how = "summed numerators ÷ summed denominators" if kpi.is_rate else "average per period"
    reference = (
        f"; reference {kpi.reference_value} ({kpi.reference_source})"
        if kpi.reference_value is not None
        else ""
    )
    return f"Own data (自社データ) over {labels}: {how}{reference}."


def kpi_target_suggestion(
    *, tenant: Tenant, kpi: KpiDefinition, period: Period, scope: KpiScope
) -> Suggestion:
    """A suggested target from the previous three periods of the same grain (one kpi_values)."""
    periods = history_periods(period)
    with reading_context(tenant):
        values = kpi_values(tenant=tenant, kpis=[kpi], periods=periods, scopes=[scope])
    own = history_fraction(kpi, [values[(kpi.key, p, scope)] for p in periods])
    return Suggestion(
        kpi=kpi,
        period=period,
        scope=scope,
        own_value=as_decimal(own),
        reference_value=kpi.reference_value,
        history_periods=periods,
        basis=_history_basis(kpi, periods),
    )


def _check_scope(tenant: Tenant, scope: KpiScope) -> None:
    """A team or rep scope must name the tenant's own team or member (same "not found")."""
    if scope.type == ScopeType.TEAM:
        if not scope.key.isdigit() or not (
            Team.objects.filter(tenant_id=tenant.pk, pk=int(scope.key)).exists()
        ):
            raise NotFound("Team", field="scope")
    elif scope.type == ScopeType.REP and (
        not scope.key.isdigit()
        or not Membership.objects.filter(tenant_id=tenant.pk, pk=int(scope.key)).exists()
    ):
        raise NotFound("Member", field="scope")


def _check_period(tenant: Tenant, period: Period) -> None:
    """A quarter or year must start where the tenant's fiscal calendar starts it."""
    own = period_containing(period.grain, period.start, tenant.fiscal_year_start_month)
    if (own.start, own.end) != (period.start, period.end):
        raise ValidationFailed(
            f"{period.label} is not a {period.grain} of this workspace's calendar.",
            field="period",
        )


def kpi_target_validate_value(*, kpi: KpiDefinition, value: Decimal) -> Decimal:
    """The value as stored, or ValidationFailed: finite, >= 0, <= 100 for %, 4 decimals."""
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value))
        except ArithmeticError as exc:
            raise ValidationFailed("A target must be a number.", field="value") from exc
    if not value.is_finite():
        raise ValidationFailed("A target must be a finite number.", field="value")
    if value < 0:
        raise ValidationFailed("A target cannot be negative.", field="value")
    if kpi.unit == Unit.PERCENT and value > 100:
        raise ValidationFailed(
            f"{kpi.key} is a percentage: its target is at most 100.", field="value"
        )
    if value >= MAX_VALUE:
        raise ValidationFailed("A target must be below 10^20.", field="value")
    places = Decimal(1).scaleb(-MAX_DECIMALS)
    if value != value.quantize(places):
        raise ValidationFailed(
            f"A target has at most {MAX_DECIMALS} decimal places.", field="value"
        )
    return value.quantize(places)


def kpi_target_validate(
    *,
    tenant: Tenant,
    kpi_key: str,
    scope: KpiScope,
    value: Decimal | None,
    set_by: Membership | None = None,
    period: Period | None = None,
) -> tuple[KpiDefinition, Decimal | None]:
    """The KPI and the value as stored, or NotFound / ValidationFailed (no write)."""
    if period is not None:
        _check_period(tenant, period)
    with tenant_context(tenant):
        kpi = kpi_definition(tenant=tenant, key=kpi_key, field="kpi")
        _check_scope(tenant, scope)
        if set_by is not None and set_by.tenant_id != tenant.pk:
            raise NotFound("Member", field="setBy")
        stored = None if value is None else kpi_target_validate_value(kpi=kpi, value=value)
    return kpi, stored


def kpi_target_set(
    *,
    tenant: Tenant,
    kpi_key: str,
    period: Period,
    scope: KpiScope,
    value: Decimal | None,
    set_by: Membership | None,
) -> KpiTarget | None:
    """Set (upsert) the target of a KPI for a period and scope; a None value deletes it."""
    with tenant_context(tenant):
        kpi, stored = kpi_target_validate(
            tenant=tenant,
            kpi_key=kpi_key,
            scope=scope,
            value=value,
            set_by=set_by,
            period=period,
        )
        lookup = {
            "kpi_key": kpi.key,
            "grain": period.grain,
            "period_start": period.start,
            "scope_type": scope.type,
            "scope_key": scope.key,
        }
        if stored is None:
            KpiTarget.objects.filter(**lookup).delete()
            return None
        target, _ = KpiTarget.objects.update_or_create(
            tenant=tenant, **lookup, defaults={"value": stored, "set_by": set_by}
        )
        return target


MAX_TARGETS_PER_BATCH = 500


@dataclass(frozen=True)
class TargetEntry:
    """One target of a batch; a None value clears it."""

    kpi_key: str
    period: Period
    scope: KpiScope
    value: Decimal | None


class TargetBatchInvalid(ValidationFailed):
    """Entries of a batch are invalid, each with its index; nothing was written."""

    def __init__(self, errors: list[tuple[int, PublicError]]) -> None:
        super().__init__(f"{len(errors)} of the targets are invalid; none was set.")
        self.errors = errors


def _known_scopes(scopes: Iterable[KpiScope]) -> set[KpiScope]:
    """The team and rep scopes among `scopes` naming the tenant in context's own (two queries)."""
    wanted = {s for s in scopes if s.type in (ScopeType.TEAM, ScopeType.REP) and s.key.isdigit()}
    teams = {int(s.key) for s in wanted if s.type == ScopeType.TEAM}
    reps = {int(s.key) for s in wanted if s.type == ScopeType.REP}
    known = {
        KpiScope.team(pk) for pk in Team.objects.filter(pk__in=teams).values_list("pk", flat=True)
    }
    known |= {
        KpiScope.rep(pk)
        for pk in Membership.objects.filter(pk__in=reps).values_list("pk", flat=True)
    }
    return known


def _checked_value(
    tenant: Tenant,
    entry: TargetEntry,
    definitions: dict[str, KpiDefinition],
    known: set[KpiScope],
) -> Decimal | None:
    _check_period(tenant, entry.period)
    kpi = definitions.get(entry.kpi_key)
    if kpi is None:
        raise NotFound(f"KPI {shown(entry.kpi_key)}", field="kpi")
    if entry.scope.type in (ScopeType.TEAM, ScopeType.REP) and entry.scope not in known:
        raise NotFound("Team" if entry.scope.type == ScopeType.TEAM else "Member", field="scope")
    return None if entry.value is None else kpi_target_validate_value(kpi=kpi, value=entry.value)


def kpi_targets_check(
    *, tenant: Tenant, entries: Sequence[TargetEntry]
) -> list[tuple[TargetEntry, Decimal | None]]:
    """Each entry with its value as stored, or TargetBatchInvalid listing every invalid or
    repeated entry. A bounded number of queries, however many entries."""
    if not entries or len(entries) > MAX_TARGETS_PER_BATCH:
        raise ValidationFailed(
            f"Send 1 to {MAX_TARGETS_PER_BATCH} targets at a time.", field="targets"
        )
    with tenant_context(tenant):
        definitions = kpi_definitions(tenant=tenant, keys=[entry.kpi_key for entry in entries])
        known = _known_scopes(entry.scope for entry in entries)
    errors: list[tuple[int, PublicError]] = []
    checked: list[tuple[TargetEntry, Decimal | None]] = []
    first: dict[tuple, int] = {}
    for index, entry in enumerate(entries):
        key = (entry.kpi_key, entry.period.grain, entry.period.start, entry.scope)
        try:
            if key in first:
                raise ValidationFailed(
                    f"The same target as entry {first[key]} of the batch.", field="kpi"
                )
            first[key] = index
            checked.append((entry, _checked_value(tenant, entry, definitions, known)))
        except PublicError as error:
            errors.append((index, error))
    if errors:
        raise TargetBatchInvalid(errors)
    return checked


@transaction.atomic
def kpi_targets_set(
    *, tenant: Tenant, entries: Sequence[TargetEntry], set_by: Membership | None
) -> list[KpiTarget | None]:
    """Set (or clear) many targets at once, all or none: a month's targets for every rep, say.

    Any invalid or repeated entry raises TargetBatchInvalid (kpi_targets_check) and nothing
    is written. Returns the stored targets in the entries' order (None where cleared).
    """
    checked = kpi_targets_check(tenant=tenant, entries=entries)
    with tenant_context(tenant):
        cleared = [entry for entry, value in checked if value is None]
        if cleared:
            KpiTarget.objects.filter(_targets_of(cleared)).delete()
        kept = [(entry, value) for entry, value in checked if value is not None]
        KpiTarget.objects.bulk_create(
            [
                KpiTarget(tenant=tenant, **_target_lookup(entry), value=value, set_by=set_by)
                for entry, value in kept
            ],
            update_conflicts=True,
            unique_fields=["tenant", *_TARGET_KEY],
            update_fields=["value", "set_by", "updated_at"],
        )
        kpi_read_version_bump(tenant.pk)  # a bulk insert sends no post_save
        stored = (
            {
                tuple(getattr(target, name) for name in _TARGET_KEY): target
                for target in KpiTarget.objects.filter(_targets_of([entry for entry, _ in kept]))
            }
            if kept
            else {}
        )
    return [stored.get(tuple(_target_lookup(entry).values())) for entry, _ in checked]


_TARGET_KEY = ("kpi_key", "grain", "period_start", "scope_type", "scope_key")


def _target_lookup(entry: TargetEntry) -> dict[str, Any]:
    return {
        "kpi_key": entry.kpi_key,
        "grain": entry.period.grain,
        "period_start": entry.period.start,
        "scope_type": entry.scope.type,
        "scope_key": entry.scope.key,
    }


def _targets_of(entries: Iterable[TargetEntry]) -> Q:
    condition = Q(pk__in=[])
    for entry in entries:
        condition |= Q(**_target_lookup(entry))
    return condition


def query_targets(
    *,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    kpi_keys: Iterable[str] | None = None,
) -> dict[tuple[str, Period, KpiScope], KpiTarget]:
    """kpi_targets for a caller already in the tenant's context: one query."""
    periods = list(dict.fromkeys(periods))
    wanted = set(scopes)
    keys = None if kpi_keys is None else sorted(set(kpi_keys))
    if not periods or not wanted or keys == []:
        return {}
    by_start = _periods_by_start(periods)
    rows = KpiTarget.objects.filter(period_filter(periods), scope_filter(wanted))
    if keys is not None:
        rows = rows.filter(kpi_key__in=keys)
    result: dict[tuple[str, Period, KpiScope], KpiTarget] = {}
    for row in rows:
        scope = KpiScope(row.scope_type, row.scope_key)
        if scope not in wanted:
            continue
        for period in by_start.get((row.grain, row.period_start), []):
            result[(row.kpi_key, period, scope)] = row
    return result


def query_target_values(
    *,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    kpi_keys: Iterable[str] | None = None,
) -> dict[tuple[str, Period, KpiScope], Decimal]:
    """Only the values of query_targets, in one query (no model instances): for evaluations."""
    periods = list(dict.fromkeys(periods))
    keys = None if kpi_keys is None else set(kpi_keys)
    if not periods or not scopes or keys == set():
        return {}
    # NOTE: the keys are filtered in target_values_from_rows rather than in SQL: a period and
    # scope have a few dozen targets at most, and an IN of every key of a tree costs the ORM
    # more to build.
    rows = (
        KpiTarget.objects.filter(period_filter(periods), scope_filter(set(scopes)))
        .order_by()
        .values_list(*TARGET_VALUE_FIELDS)
    )
    return target_values_from_rows(periods=periods, scopes=scopes, kpi_keys=keys, rows=rows)


# The fields of a target row that target_values_from_rows reads, in its order.
TARGET_VALUE_FIELDS: tuple[str, ...] = (
    "kpi_key",
    "grain",
    "period_start",
    "scope_type",
    "scope_key",
    "value",
)


def target_values_from_rows(
    *,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    kpi_keys: Iterable[str] | None,
    rows: Iterable[Sequence],
) -> dict[tuple[str, Period, KpiScope], Decimal]:
    """query_target_values from target rows (TARGET_VALUE_FIELDS), others ignored: no query."""
    wanted = set(scopes)
    keys = None if kpi_keys is None else set(kpi_keys)
    by_start = _periods_by_start(dict.fromkeys(periods))
    result: dict[tuple[str, Period, KpiScope], Decimal] = {}
    for key, grain, start, scope_type, scope_key, value in rows:
        scope = KpiScope(scope_type, scope_key)
        if (keys is not None and key not in keys) or scope not in wanted:
            continue
        for period in by_start.get((grain, start), []):
            result[(key, period, scope)] = value
    return result


def _periods_by_start(periods: Iterable[Period]) -> dict[tuple[str, date], list[Period]]:
    by_start: dict[tuple[str, date], list[Period]] = {}
    for period in periods:
        by_start.setdefault((period.grain, period.start), []).append(period)
    return by_start


def kpi_targets(
    *,
    tenant: Tenant,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    kpi_keys: Iterable[str] | None = None,
) -> dict[tuple[str, Period, KpiScope], KpiTarget]:
    """The targets of the periods and scopes (optionally only `kpi_keys`), in one query.

    Keyed by (kpi_key, period, scope) with the Period and KpiScope objects passed in.
    """
    with reading_context(tenant):
        return query_targets(periods=periods, scopes=scopes, kpi_keys=kpi_keys)
