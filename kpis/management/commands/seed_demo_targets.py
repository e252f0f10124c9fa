"""`manage.py seed_demo_targets --tenant acme`: KGI and rate targets for the demo's KPI tree."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kpis.demo import demo_targets_seed
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Set demo targets (won deals +10 % on the month before, the article's rates)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        result = demo_targets_seed(tenant=tenant)
        targets = ", ".join(f"{label}: {value} won deals" for label, value in result.kgi.items())
        self.stdout.write(f"{tenant.slug}: targets set ({targets}; rates 25/50/20 %)")
