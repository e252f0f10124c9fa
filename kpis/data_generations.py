"""Versions of a tenant's counted data, for caches of results computed from raw rows.

Every write to leads, activities, stage transitions or deals marks its tenant-local days
dirty in the same transaction (pipeline.dirty), so does a team move for the days it covers,
and a calendar change asks for a rebuild (kpis.snapshots.scheduling); the snapshots'
exactness already rests on that. Only a snapshot refresh or rebuild clears those marks, and
each draws the tenant's KpiDataGeneration token anew in the same transaction
(`generation_renew`). So while the tenant has no mark of the kinds a result reads and no
rebuild pending, its token names one state of that data: a result computed then can be kept
under the token, and is never served once the data changed (the change leaves a mark until
a refresh draws a new token).
"""

from __future__ import annotations

import uuid

from django.db import connections, router

from kpis.models import KpiDataGeneration
from pipeline.models import DirtyDay, DirtyKind
from tenants.models import Tenant

_VERSION_SQL = f"""
SELECT
    (SELECT token FROM {KpiDataGeneration._meta.db_table} WHERE tenant_id = %s),
    (SELECT kpi_rebuild_requested_at IS NOT NULL FROM {Tenant._meta.db_table} WHERE id = %s),
    EXISTS (SELECT 1 FROM {DirtyDay._meta.db_table} WHERE tenant_id = %s AND (kinds & %s) <> 0)
"""


def generation_renew(tenant: Tenant) -> None:
    """Draw the tenant's generation anew, in the caller's transaction: a refresh or rebuild
    clearing dirty marks, under the tenant's lock."""
    token = uuid.uuid4()
    if not KpiDataGeneration.all_tenants.filter(tenant_id=tenant.pk).update(token=token):
        # NOTE: refreshes of one tenant are serialised by their lock, so no other
        # transaction creates this row meanwhile (SQLite serialises every writer anyway).
        KpiDataGeneration.all_tenants.create(tenant_id=tenant.pk, token=token)


def data_version(*, tenant: Tenant, kinds: DirtyKind) -> str | None:
    """The generation of the tenant's data of `kinds` (leads, transitions, ...), or None
    while a dirty mark of those kinds or a pending rebuild says it may have changed since
    the last refresh (and before the tenant's first refresh): then nothing may be served
    from, or kept in, a cache. One query, on the database the caller's reads go to (a
    GraphQL query's read replica): a version and the rows it versions come from one copy."""
    with connections[router.db_for_read(DirtyDay)].cursor() as cursor:
        cursor.execute(_VERSION_SQL, [tenant.pk, tenant.pk, tenant.pk, int(kinds)])
        token, rebuild_pending, dirty = cursor.fetchone()
    if token is None or rebuild_pending or dirty:
        return None
    return str(token)
