"""manage.py seed_default_dashboards [--tenant acme]: the default dashboard of every role."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reports.dashboards import dashboards_seed_defaults
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Give workspaces created before the reports app their default dashboards (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", help="One workspace's slug; every workspace if omitted.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("pk")
        if options.get("tenant"):
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No workspace {options['tenant']!r}.")
        created = 0
        for tenant in tenants:
            # Each tenant in its own context (and transaction), as every cross-tenant loop.
            with tenant_context(tenant):
                created += dashboards_seed_defaults(tenant)
        self.stdout.write(f"{created} default dashboards created.")
