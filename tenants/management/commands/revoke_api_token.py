"""Revoke an API token by its prefix (kpi_<key id>) or full secret."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tenants.context import tenant_context
from tenants.models import ApiToken, Tenant


class Command(BaseCommand):
    help = "Revoke an API token, given its prefix as shown in lists (kpi_<key id>)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        _, _, rest = options["prefix"].partition("_")
        key_id = rest.partition("_")[0]
        token = None
        # Which tenant holds the key id is unknown: ask each tenant in its own context.
        for tenant in Tenant.objects.order_by("pk"):
            with tenant_context(tenant):
                token = ApiToken.objects.select_related("tenant").filter(key_id=key_id).first()
            if token is not None:
                break
        if token is None:
            raise CommandError("No such API token.")
        services.api_token_revoke(tenant=token.tenant, token_id=token.pk)
        self.stdout.write(f"Revoked {token.prefix} ({token.name}) of {token.tenant.slug}.")
