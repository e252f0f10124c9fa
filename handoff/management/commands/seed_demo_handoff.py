"""manage.py seed_demo_handoff --tenant acme: an agreed, active handoff rule set, evaluated."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from handoff.demo import demo_handoff_seed
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Give a workspace an active, agreed handoff rule version and qualify its leads."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="The workspace's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No workspace {options['tenant']!r}.")
        result = demo_handoff_seed(tenant=tenant)
        self.stdout.write(
            f"Handoff rule version {result.version.number} active; "
            f"{result.moved} leads qualified as MQL."
        )
