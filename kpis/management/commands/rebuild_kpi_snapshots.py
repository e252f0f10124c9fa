"""`manage.py rebuild_kpi_snapshots --tenant acme`: recompute a tenant's snapshots from raw rows."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kpis.failures import error_text
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_warm
from pipeline.statistics import analyze_stale_tables
from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Recompute every KPI snapshot of one tenant (or all with --all) from raw rows."

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--tenant", help="Tenant slug.")
        group.add_argument("--all", action="store_true", help="Every tenant, one by one.")

    def handle(self, *args: Any, **options: Any) -> None:
        # The Tenant table is not tenant-owned; each rebuild runs in its tenant's context.
        tenants = list(
            Tenant.objects.all()
            if options["all"]
            else Tenant.objects.filter(slug=options["tenant"])
        )
        if not tenants:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        analyzed = analyze_stale_tables()
        if analyzed:
            self.stdout.write(f"Analysed {', '.join(analyzed)} (stale planner statistics).")
        broken = []
        for tenant in tenants:
            try:
                with tenant_context(tenant):
                    result = kpi_snapshots_rebuild(tenant=tenant, side_connection=True)
                with tenant_context(tenant):
                    warmed = kpi_snapshots_warm(tenant=tenant)
            except Exception as error:
                # NOTE: a rebuild keeps the days it cannot compute as failed days and still
                # completes; this is what is left (the database went away, say).
                logger.exception("Rebuild of tenant %s failed.", tenant.slug)
                self.stderr.write(f"{tenant.slug}: rebuild failed: {error_text(error)}")
                broken.append(tenant.slug)
                continue
            self.stdout.write(
                f"{tenant.slug}: {result.days} days, {result.periods} periods, "
                f"{result.rows} snapshot rows in {result.seconds:.2f} s"
                + (f"; {warmed} open periods prepared for incremental refreshes" if warmed else "")
            )
            for failed in result.failed:
                self.stdout.write(
                    f"{tenant.slug}: {failed.day} not computed ({failed.error}); "
                    f"retried from {failed.retry_at:%Y-%m-%d %H:%M} UTC"
                )
        if broken:
            raise CommandError(f"Rebuild failed for {', '.join(broken)} (see the log).")
