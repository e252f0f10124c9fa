"""First start: create a tenant, its admin login (generated password) and optionally a token."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email, validate_slug
from django.db import transaction

from tenants import members, services
from tenants.errors import PublicError
from tenants.models import Tenant, validate_timezone
from tenants.scopes import TOKEN_SCOPES, Role

PASSWORD_BYTES = 18  # 24 URL-safe characters, 144 random bits


def _checked(value: str, validator: Any, what: str) -> str:
    try:
        validator(value)
    except ValidationError as error:
        raise CommandError(f"{what}: {' '.join(error.messages)}") from error
    return value


class Command(BaseCommand):
    help = (
        "Create a tenant and its first admin login with a generated password (printed once); "
        "with --with-token, an API token too (its secret printed once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="Workspace slug, e.g. acme.")
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument("--admin-email", required=True, help="The first admin's e-mail.")
        parser.add_argument(
            "--admin-username", default=None, help="Login name (default: the e-mail)."
        )
        parser.add_argument("--timezone", default="Asia/Tokyo", help="IANA time zone.")
        parser.add_argument("--language", default="ja", choices=[c.value for c in Tenant.Language])
        parser.add_argument("--currency", default="JPY")
        parser.add_argument("--fiscal-year-start", type=int, default=4, dest="fiscal_start")
        parser.add_argument("--holiday-country", default="JP")
        parser.add_argument("--with-token", action="store_true", help="Also create an API token.")
        parser.add_argument(
            "--token-scopes",
            default=None,
            help="Comma-separated scopes of the token (default: all token scopes).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = _checked(options["slug"], validate_slug, "--slug")
        email = _checked(options["admin_email"].strip(), validate_email, "--admin-email")
        timezone_name = _checked(options["timezone"], validate_timezone, "--timezone")
        username = options["admin_username"] or email
        scopes = sorted(TOKEN_SCOPES)
        if options["token_scopes"]:
            if not options["with_token"]:
                raise CommandError("--token-scopes needs --with-token.")
            scopes = [s.strip() for s in options["token_scopes"].split(",") if s.strip()]
            unknown = sorted(set(scopes) - TOKEN_SCOPES)
            if unknown or not scopes:
                raise CommandError(
                    f"--token-scopes: unknown {', '.join(unknown) or '(none given)'}; "
                    f"choose from {', '.join(sorted(TOKEN_SCOPES))}."
                )
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"--slug: a tenant {slug!r} already exists.")
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"--admin-username: a user {username!r} already exists.")

        password = secrets.token_urlsafe(PASSWORD_BYTES)
        user = user_model(username=username, email=email)
        # The generated password passes the same validators as one a person would choose.
        validate_password(password, user=user)
        secret = None
        try:
            # One transaction: a refusal anywhere leaves no half-made tenant or login.
            with transaction.atomic():
                tenant = services.tenant_create(
                    slug=slug,
                    name=options["name"],
                    timezone_name=timezone_name,
                    currency=options["currency"],
                    fiscal_year_start_month=options["fiscal_start"],
                    holiday_country=options["holiday_country"],
                    language=options["language"],
                )
                user.set_password(password)
                user.save()
                members.membership_add(tenant=tenant, user=user, role=Role.ADMIN)
                if options["with_token"]:
                    _, secret = services.api_token_create(
                        tenant=tenant, name="first token", scopes=scopes, created_by=user
                    )
        except PublicError as error:
            field = f"{error.field}: " if error.field else ""
            raise CommandError(f"{field}{error.message}") from error

        lines = [
            f"Tenant:       {tenant.slug} ({tenant.name}), {tenant.timezone}, {tenant.language}",
            f"Admin login:  {username}",
            f"Password:     {password}",
        ]
        if secret:
            lines.append(f"API token:    {secret}  (scopes: {', '.join(scopes)})")
        lines.append("Shown this once only: store them now (the database keeps hashes only).")
        self.stdout.write("\n".join(lines))
