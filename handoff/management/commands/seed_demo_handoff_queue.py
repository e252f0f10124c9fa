"""manage.py seed_demo_handoff_queue --tenant acme: field sales, routing, SLA and a few SQLs
awaiting acceptance (after seed_demo_handoff)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from handoff.demo_queue import demo_handoff_queue_seed
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Give a workspace a field-sales team, routing and SLA rules, and SQL handoffs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="The workspace's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No workspace {options['tenant']!r}.")
        try:
            result = demo_handoff_queue_seed(tenant=tenant)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Handoff rule version {result.version.number} routes SQLs; "
            f"{result.opened} SQL handoffs await acceptance."
        )
