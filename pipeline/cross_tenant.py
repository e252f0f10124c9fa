"""The questions about dirty days that span every tenant (the minute sweep, the readiness
probe), each answering only its question.

On PostgreSQL the app role sees one tenant's rows at a time, so each asks a narrow SECURITY
DEFINER function registered with `tenants.rls` (created after every migrate); on SQLite the
same question goes through the ORM with every tenant visible.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from pipeline.models import DirtyDay
from tenants.context import dangerously_all_tenants
from tenants.rls import CrossTenantFunction, register_cross_tenant_function

DIRTY_TENANTS_FUNCTION = "app_tenants_with_dirty_days"
DIRTY_BACKLOG_FUNCTION = "app_dirty_day_backlog"


def dirty_day_functions_register() -> None:
    """Called from PipelineConfig.ready()."""
    tables = (("dirty", DirtyDay),)
    # The minute sweep: which tenants have dirty days due now (ids only): never failed, or
    # failed and past their retry time.
    register_cross_tenant_function(
        CrossTenantFunction(
            name=DIRTY_TENANTS_FUNCTION,
            args="",
            returns="SETOF bigint",
            body="SELECT DISTINCT tenant_id FROM {dirty} WHERE retry_at IS NULL "
            "OR retry_at <= now() ORDER BY 1",
            tables=tables,
        )
    )
    # The readiness probe: how many dirty days are due now and how many have failed, over
    # all tenants (two counts, nothing that names a tenant or a day).
    register_cross_tenant_function(
        CrossTenantFunction(
            name=DIRTY_BACKLOG_FUNCTION,
            args="",
            returns="TABLE(due bigint, failed bigint)",
            body="SELECT count(*) FILTER (WHERE retry_at IS NULL OR retry_at <= now()), "
            "count(*) FILTER (WHERE failed_at IS NOT NULL) FROM {dirty}",
            tables=tables,
        )
    )


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def tenants_with_dirty_days() -> list[int]:
    """Ids of the tenants with at least one dirty day due now: never failed, or past its
    retry time (the sweep's question)."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM public.{DIRTY_TENANTS_FUNCTION}()")
            return [row[0] for row in cursor.fetchall()]
    with dangerously_all_tenants():
        due = Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now())
        return sorted(set(DirtyDay.objects.filter(due).values_list("tenant_id", flat=True)))


def dirty_day_backlog() -> tuple[int, int]:
    """(dirty days due now, dirty days whose latest refresh failed), over every tenant:
    counts only, for the readiness probe."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT due, failed FROM public.{DIRTY_BACKLOG_FUNCTION}()")
            due, failed = cursor.fetchone()
            return int(due), int(failed)
    with dangerously_all_tenants():
        counts = DirtyDay.objects.aggregate(
            due=Count("pk", filter=Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now())),
            failed=Count("pk", filter=Q(failed_at__isnull=False)),
        )
    return counts["due"], counts["failed"]
