"""manage.py seed_demo_alerts --tenant acme: the demo's alert rules, evaluated at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alerts.demo import demo_alerts_seed
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Add the demo alert rules to a workspace and evaluate them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="The workspace's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No workspace {options['tenant']!r}.")
        result = demo_alerts_seed(tenant=tenant)
        self.stdout.write(
            f"{result.rules} alert rules judged {result.judged} times: "
            f"{len(result.fired)} alerts firing."
        )
