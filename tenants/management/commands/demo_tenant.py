"""Create (or reuse) the demo tenant with an admin login and print a fresh API token."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import members, services
from tenants.errors import PublicError
from tenants.models import Tenant
from tenants.scopes import TOKEN_SCOPES, Role

DEMO_PASSWORD = "demo-password-2026"


class Command(BaseCommand):
    help = (
        "Debug mode only: create or reuse a demo tenant and its admin login (fixed demo "
        "password); prints a new API token. In production use create_tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="acme")
        parser.add_argument("--name", default="株式会社アクメ (demo)")
        # Settings of a tenant created now (an existing one keeps its own).
        parser.add_argument("--timezone", default="Asia/Tokyo")
        parser.add_argument("--fiscal-year-start", type=int, default=4, dest="fiscal_start")
        parser.add_argument("--holiday-country", default="JP")
        parser.add_argument("--currency", default="JPY")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            # A fixed, published password is for a laptop demo, never for a deployment.
            raise CommandError(
                "demo_tenant sets a fixed demo password and runs only in debug mode "
                "(DJANGO_DEBUG=1). To set up a real tenant use: manage.py create_tenant "
                "--slug ... --name ... --admin-email ..."
            )
        slug = options["tenant"]
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            try:
                tenant = services.tenant_create(
                    slug=slug,
                    name=options["name"],
                    timezone_name=options["timezone"],
                    fiscal_year_start_month=options["fiscal_start"],
                    holiday_country=options["holiday_country"],
                    currency=options["currency"],
                )
            except PublicError as error:
                raise CommandError(f"{error.field}: {error.message}") from error
        username = f"{slug}-admin"
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.email = f"{username}@example.com"
            user.save()
        members.membership_add(tenant=tenant, user=user, role=Role.ADMIN)
        _, secret = services.api_token_create(
            tenant=tenant, name="demo token", scopes=sorted(TOKEN_SCOPES), created_by=user
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo tenant:  {tenant.slug} ({tenant.name})",
                    f"Admin login:  {username} / {DEMO_PASSWORD}  (http://127.0.0.1:8000/admin/)",
                    f"API token:    {secret}",
                    "GraphiQL:     http://127.0.0.1:8000/graphql/",
                    "Try:          curl -s http://127.0.0.1:8000/graphql/ "
                    f"-H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' "
                    '-d \'{"query": "{ me { authKind tenant { slug name } scopes } }"}\'',
                    "",
                ]
            )
        )
