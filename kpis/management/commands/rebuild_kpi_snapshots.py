"""`manage.py rebuild_kpi_snapshots --tenant acme`: recompute a tenant's snapshots from raw rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_warm
from pipeline.statistics import analyze_stale_tables
from tenants.context import tenant_context
from tenants.models import Tenant


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
        for tenant in tenants:
            with tenant_context(tenant):
                result = kpi_snapshots_rebuild(tenant=tenant, side_connection=True)
            with tenant_context(tenant):
                warmed = kpi_snapshots_warm(tenant=tenant)
            self.stdout.write(
                f"{tenant.slug}: {result.days} days, {result.periods} periods, "
                f"{result.rows} snapshot rows in {result.seconds:.2f} s"
                + (f"; {warmed} open periods prepared for incremental refreshes" if warmed else "")
            )
