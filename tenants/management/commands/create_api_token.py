"""Create an API token for a tenant and print its secret once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tenants import services
from tenants.errors import PublicError
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API token for a tenant; the secret is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            help="Repeat for several scopes, e.g. --scope records:write.",
        )
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument(
            "--requests-per-minute",
            type=int,
            default=None,
            help="The token's own request limit (default: API_TOKEN_RATE_REQUESTS_PER_MINUTE).",
        )
        parser.add_argument(
            "--rows-per-minute",
            type=int,
            default=None,
            help="The token's own ingested-rows limit (default: API_TOKEN_RATE_ROWS_PER_MINUTE).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        days = options["expires_in_days"]
        expires_at = timezone.now() + dt.timedelta(days=days) if days else None
        try:
            token, secret = services.api_token_create(
                tenant=tenant,
                name=options["name"],
                scopes=options["scopes"],
                expires_at=expires_at,
                requests_per_minute=options["requests_per_minute"],
                rows_per_minute=options["rows_per_minute"],
            )
        except PublicError as error:
            raise CommandError(error.message) from error
        self.stderr.write(f"Created token {token.prefix} for {tenant.slug}; copy it now:")
        self.stdout.write(secret)
