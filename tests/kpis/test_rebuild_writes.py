"""A rebuild writes only the snapshot rows that changed (PostgreSQL), and stays exact."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from kpis.models import KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline.demo import seed_demo
from pipeline.models import Activity, Lead
from tenants.context import tenant_context

TODAY = dt.date(2026, 5, 20)

# "__all__": seed_demo writes through the owner connection when it is a superuser.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _table() -> dict[tuple, tuple]:
    """Every snapshot row of the tenant in context, by key, with its id and computed_at."""
    columns = [f.attname for f in KpiSnapshot._meta.concrete_fields]
    return {
        (row["grain"], row["period_start"], row["scope_type"], row["scope_key"]): tuple(
            row[name] for name in columns
        )
        for row in KpiSnapshot.objects.values(*columns)
    }


def _values(table: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """The table without ids and computed_at (what readers see as numbers)."""
    names = [f.attname for f in KpiSnapshot._meta.concrete_fields]
    kept = [i for i, name in enumerate(names) if name not in {"id", "computed_at"}]
    return {key: tuple(row[i] for i in kept) for key, row in table.items()}


def _tuples_written() -> tuple[int, int, int]:
    """Rows this transaction inserted, updated and deleted in the snapshot table so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname = 'kpis_kpisnapshot'"
        )
        return cursor.fetchone()


@pytest.fixture
def seeded(tenant_a: Any, tenant_b: Any) -> Any:
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=TODAY)
    seed_demo(tenant_slug="globex", leads=60, months=2, seed=5, today=TODAY)
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            kpi_snapshots_rebuild(tenant=tenant)
    return tenant_a


@pytest.mark.postgres
def test_a_second_rebuild_writes_no_row_and_keeps_every_row_as_it_was(
    seeded: Any, tenant_b: Any
) -> None:
    with tenant_context(tenant_b):
        other = _table()
    with tenant_context(seeded):
        # given a rebuilt tenant
        before = _table()
        assert len(before) > 500
        start = _tuples_written()
        # when it is rebuilt again with nothing changed
        result = kpi_snapshots_rebuild(tenant=seeded)
        # then it computed every row and wrote none: ids and computed_at are untouched
        assert result.rows == len(before)
        assert result.written == 0
        assert _tuples_written() == start
        assert _table() == before
    # and the other tenant's rows are untouched
    with tenant_context(tenant_b):
        assert _table() == other


@pytest.mark.postgres
def test_a_rebuild_after_an_edit_below_the_services_writes_just_the_rows_it_changes(
    seeded: Any, tenant_b: Any
) -> None:
    with tenant_context(tenant_b):
        other = _table()
    with tenant_context(seeded):
        before = _table()
        # given a call inserted below the services (no dirty mark), and a lead's activities
        # deleted likewise
        lead = Lead.objects.order_by("pk").first()
        at = dt.datetime(2026, 5, 11, 3, tzinfo=dt.UTC)
        Activity.objects.create(tenant=seeded, lead=lead, type="call", occurred_at=at)
        gone = Lead.objects.order_by("-pk").first()
        Activity.objects.filter(lead=gone).delete()
        start = _tuples_written()
        # when the tenant is rebuilt
        result = kpi_snapshots_rebuild(tenant=seeded)
        after = _table()
        # then the rows written are exactly the rows that differ
        old, new = _values(before), _values(after)
        changed = {key for key in old.keys() & new.keys() if old[key] != new[key]}
        added, removed = new.keys() - old.keys(), old.keys() - new.keys()
        assert changed
        ins, upd, dele = (b - a for a, b in zip(start, _tuples_written(), strict=True))
        assert (ins, upd, dele) == (len(added), len(changed), len(removed))
        assert result.written == len(added) + len(changed) + len(removed)
        # every other row kept its id and computed_at
        assert {key: after[key] for key in old.keys() - changed - removed} == {
            key: before[key] for key in old.keys() - changed - removed
        }
        # and the table equals a rebuild from an empty table
        KpiSnapshot.objects.all().delete()
        kpi_snapshots_rebuild(tenant=seeded)
        assert _values(_table()) == new
    with tenant_context(tenant_b):
        assert _table() == other
