"""manage.py generate_due_reports [--tenant acme] [--with-dashboards]: what the hourly beat
does, now (idempotent: reports that exist are left alone)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reports.dashboards import dashboards_seed_defaults
from reports.generation import reports_generate_due
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Generate the reports due now (the demo: also the default dashboards)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", help="One workspace's slug; every workspace if omitted.")
        parser.add_argument(
            "--with-dashboards",
            action="store_true",
            help="Also give the workspaces their missing default dashboards.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.filter(is_active=True).order_by("pk")
        if options.get("tenant"):
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No workspace {options['tenant']!r}.")
        dashboards = reports = 0
        for tenant in tenants:
            with tenant_context(tenant):
                if options["with_dashboards"]:
                    dashboards += dashboards_seed_defaults(tenant)
                reports += len(reports_generate_due(tenant=tenant))
        self.stdout.write(f"{reports} reports generated, {dashboards} default dashboards created.")
