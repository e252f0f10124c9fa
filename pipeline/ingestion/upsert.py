"""Set-based upsert of rows keyed by (tenant, source_system, external_id), from plain tuples.

`records_upsert` classifies a kind's parsed rows as created / updated / unchanged against
what is stored, writes the created and changed ones, and returns every row's primary key
and the stored values the caller needs (old times for dirty days, a deal's old stage).

On PostgreSQL the rows are COPYed into a temporary table, then one statement classifies
them, one INSERT writes the new ones and one UPDATE the changed ones: a handful of
statements per kind and batch, whatever its size, and no model instance per row. Other
databases (SQLite, for tests and local use) take a portable path, one SELECT and
executemany writes, with the same results. `rows_update` sets columns of rows by id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models
from django.db.models import F, Lookup, Q

from tenants.models import Tenant

# Rows are (external_id, *values of `columns`).
Row = tuple[Any, ...]


@dataclass
class Upserted:
    """What became of each external id: its primary key and whether it changed."""

    ids: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # For rows that were stored before: the stored values of `before`, in that order.
    before: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def records_upsert(
    *,
    model: type[models.Model],
    tenant: Tenant,
    source_system: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    before: Sequence[str] = (),
    now: dt.datetime,
    on_insert: Mapping[str, str] | None = None,
) -> Upserted:
    """Insert or update `rows` of `model` (attnames in `columns`) in `tenant`; see the module.

    External ids must be unique within `rows` (the parser rejects duplicates first).
    `on_insert` maps attnames set only when a row is inserted to the attname of `columns`
    whose value they take (an update leaves them as they are).
    """
    if not rows:
        return Upserted()
    copies = dict(on_insert or {})
    if connection.vendor == "postgresql":
        return _upsert_postgresql(model, tenant, source_system, columns, rows, before, now, copies)
    return _upsert_portable(model, tenant, source_system, columns, rows, before, now, copies)


class _AnyOf(Lookup):
    """`lhs = ANY(%s)` with the list as one array parameter (PostgreSQL)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def external_id_in(external_ids: list[str]) -> Q | Lookup:
    """A filter on `external_id` for thousands of values.

    NOTE: on PostgreSQL one array parameter instead of an `IN` list with a placeholder per
    value, which is several times cheaper to send and plan at batch sizes.
    """
    if connection.vendor == "postgresql":
        return _AnyOf(F("external_id"), external_ids)
    return Q(external_id__in=external_ids)


def _concrete(model: type[models.Model], attname: str) -> models.Field:
    return next(f for f in model._meta.concrete_fields if f.attname == attname)


def _insert_defaults(
    model: type[models.Model], given: set[str], now: dt.datetime
) -> list[tuple[models.Field, Any]]:
    """The columns an INSERT must fill that the rows do not carry: auto times and defaults.

    Django applies model defaults in Python, not in the table, so raw SQL supplies them.
    """
    defaults = []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.attname in given:
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value: Any = now
        else:
            value = f.get_default()
        defaults.append((f, f.get_db_prep_save(value, connection)))
    return defaults


def _auto_now(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]


def _upsert_postgresql(
    model: type[models.Model],
    tenant: Tenant,
    source_system: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    before: Sequence[str],
    now: dt.datetime,
    copies: dict[str, str],
) -> Upserted:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    stage = qn(f"_ingest_{model._meta.db_table}")
    fields = [_concrete(model, name) for name in columns]
    cols = [qn(f.column) for f in fields]
    staged = ", ".join(["external_id", *cols])
    json_positions = [i + 1 for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    if json_positions:
        adapt = connection.ops.adapt_json_value
        encoders = {i: fields[i - 1].encoder for i in json_positions}  # type: ignore[attr-defined]
        rows = [
            tuple(adapt(v, encoders[i]) if i in encoders else v for i, v in enumerate(row))
            for row in rows
        ]
    same = " AND ".join(f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in cols) or "TRUE"
    old = "".join(f", t.{qn(_concrete(model, name).column)}" for name in before)
    result = Upserted()
    with connection.cursor() as cursor:
        # TRICKY: COPY is far cheaper than any INSERT for thousands of rows, but the app role
        # cannot COPY into a table with row-level security; a temporary table has none. It
        # lives in this session only, is dropped below (ON COMMIT DROP if an error comes
        # first) and only this transaction sees it.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS"
            f" SELECT {staged} FROM {table} WITH NO DATA"
        )
        # NOTE: straight to psycopg: Django's cursor wrapper has no COPY (and does not log it).
        with cursor.cursor.copy(f"COPY {stage} ({staged}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # Raw SQL: the tenant is filtered explicitly here (row-level security also holds).
        # TRICKY: one probe of the unique (tenant, source_system, external_id) index per
        # staged row, whatever the statistics say. LIMIT 1 keeps the lateral subquery from
        # being flattened into a join, which with a new tenant's stale statistics ("no
        # rows") would read all of the tenant's rows (or test each against the whole batch).
        # The tenant comes through a scalar subquery, so the planner cannot read from the
        # statistics that a tenant it has not seen yet has about one row: with that estimate
        # any index on (tenant_id, ...) tied with the unique one, and the newest index won
        # the tie, scanning the tenant's every row per staged row (seen: 6 s per batch).
        cursor.execute(
            f"SELECT s.external_id, t.id, ({same}){old} FROM {stage} s"
            f" CROSS JOIN LATERAL (SELECT * FROM {table} t"
            " WHERE t.tenant_id = (SELECT %s::bigint) AND t.source_system = %s"
            " AND t.external_id = s.external_id LIMIT 1) t",
            [tenant.pk, source_system],
        )
        stored = {ext: (pk, is_same, tuple(values)) for ext, pk, is_same, *values in cursor}
        for row in rows:
            external_id = row[0]
            found = stored.get(external_id)
            if found is None:
                result.created.append(external_id)
                continue
            pk, is_same, values = found
            result.ids[external_id] = pk
            result.before[external_id] = values
            (result.unchanged if is_same else result.updated).append(external_id)
        # NOTE: we hold the tenant's ingestion lock, so what was classified stays true: new
        # rows are inserted and changed ones updated, each in one statement.
        if result.created:
            defaults = _insert_defaults(
                model, {"tenant_id", "source_system", "external_id", *columns, *copies}, now
            )
            copied = [(qn(_concrete(model, dst).column), cols[columns.index(src)])
                      for dst, src in copies.items()]  # fmt: skip
            insert_cols = ", ".join(
                ["tenant_id", "source_system", staged, *(dst for dst, _ in copied),
                 *(qn(f.column) for f, _ in defaults)]
            )  # fmt: skip
            selected = ", ".join(
                ["%s", "%s", *(f"s.{c}" for c in ["external_id", *cols]),
                 *(f"s.{src}" for _, src in copied)]
            )  # fmt: skip
            selected += "".join(", %s" for _ in defaults)
            params: list[Any] = [tenant.pk, source_system, *(value for _, value in defaults)]
            only_new = ""
            if stored:
                only_new = " WHERE s.external_id <> ALL(%s)"
                params.append(list(stored))
            cursor.execute(
                f"INSERT INTO {table} ({insert_cols}) SELECT {selected} FROM {stage} s{only_new}"
                " RETURNING external_id, id",
                params,
            )
            result.ids.update(cursor.fetchall())
        if result.updated:
            auto_now = _auto_now(model)
            assignments = ", ".join(
                [*(f"{c} = s.{c}" for c in cols), *(f"{qn(f.column)} = %s" for f in auto_now)]
            )
            cursor.execute(
                f"UPDATE {table} t SET {assignments} FROM {stage} s"
                " WHERE t.id = ANY(%s) AND t.tenant_id = (SELECT %s::bigint)"
                " AND s.external_id = t.external_id",
                [
                    *(f.get_db_prep_save(now, connection) for f in auto_now),
                    [result.ids[external_id] for external_id in result.updated],
                    tenant.pk,
                ],
            )
        cursor.execute(f"DROP TABLE {stage}")
    return result


def rows_update(
    *, model: type[models.Model], tenant: Tenant, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    """Set `columns` of existing rows, given as (pk, *values), in one executemany.

    NOTE: psycopg sends the statements in one pipeline and Django counts one query; unlike
    `bulk_update` there is no CASE over every row and no batching by parameter count.
    """
    if not rows:
        return
    qn = connection.ops.quote_name
    fields = [_concrete(model, name) for name in columns]
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE id = %s AND tenant_id = %s",
            [
                [
                    *(
                        f.get_db_prep_save(v, connection)
                        for f, v in zip(fields, row[1:], strict=True)
                    ),
                    row[0],
                    tenant.pk,
                ]
                for row in rows
            ],
        )


def _upsert_portable(
    model: type[models.Model],
    tenant: Tenant,
    source_system: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    before: Sequence[str],
    now: dt.datetime,
    copies: dict[str, str],
) -> Upserted:
    """The same upsert without COPY or ON CONFLICT: one SELECT, then executemany writes."""
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    fields = [_concrete(model, name) for name in columns]
    width = len(columns)
    manager = model.objects  # type: ignore[attr-defined]
    stored = {
        ext: tuple(values)
        for ext, *values in manager.filter(
            external_id_in([row[0] for row in rows]), source_system=source_system
        ).values_list("external_id", "pk", *columns, *before)
    }
    result = Upserted()
    new: list[Row] = []
    changed: list[tuple[int, Row]] = []
    for row in rows:
        external_id = row[0]
        found = stored.get(external_id)
        if found is None:
            result.created.append(external_id)
            new.append(row)
            continue
        result.ids[external_id] = found[0]
        result.before[external_id] = found[1 + width :]
        if found[1 : 1 + width] == row[1:]:
            result.unchanged.append(external_id)
        else:
            result.updated.append(external_id)
            changed.append((found[0], row))

    def prepared(row: Row) -> list[Any]:
        return [f.get_db_prep_save(v, connection) for f, v in zip(fields, row[1:], strict=True)]

    with connection.cursor() as cursor:
        if new:
            defaults = _insert_defaults(
                model, {"tenant_id", "source_system", "external_id", *columns, *copies}, now
            )
            names = ["tenant_id", "source_system", "external_id"]
            names += [qn(f.column) for f in fields]
            names += [qn(_concrete(model, dst).column) for dst in copies]
            names += [qn(f.column) for f, _ in defaults]
            positions = [columns.index(src) for src in copies.values()]
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(names)})"
                f" VALUES ({', '.join(['%s'] * len(names))})",
                [
                    [tenant.pk, source_system, row[0], *(values := prepared(row))]
                    + [values[i] for i in positions]
                    + [value for _, value in defaults]
                    for row in new
                ],
            )
            result.ids.update(
                manager.filter(
                    external_id_in([row[0] for row in new]), source_system=source_system
                ).values_list("external_id", "pk")
            )
    auto_now = [f.attname for f in _auto_now(model)]
    rows_update(
        model=model,
        tenant=tenant,
        columns=[*columns, *auto_now],
        rows=[(pk, *row[1:], *(now for _ in auto_now)) for pk, row in changed],
    )
    return result
