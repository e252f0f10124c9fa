"""Writes for tenants: workspaces and their settings, closures, and API tokens (services).

Teams and members are in `tenants.members`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from tenants import cross_tenant, rls, tokens
from tenants.bounds import MAX_DAY, day_check, shown, text_check
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed, camel_case
from tenants.hooks import run_tenant_created
from tenants.models import (
    API_TOKEN_MAX_REQUESTS_PER_MINUTE,
    API_TOKEN_MAX_ROWS_PER_MINUTE,
    ApiToken,
    Tenant,
    TenantClosure,
)
from tenants.scopes import TOKEN_SCOPES

API_TOKEN_NAME_MAX = 100
CLOSURE_NAME_MAX = 100


def _full_clean(obj: object, exclude: Iterable[str] = ()) -> None:
    """Model validation as a ValidationFailed naming the field as GraphQL does (camelCase)."""
    try:
        obj.full_clean(exclude=list(exclude))  # type: ignore[attr-defined]
    except DjangoValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        public_field = None if field == "__all__" else camel_case(field)
        raise ValidationFailed(" ".join(messages), field=public_field) from exc


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    timezone_name: str = "Asia/Tokyo",
    currency: str = "JPY",
    fiscal_year_start_month: int = 4,
    holiday_country: str = "JP",
    language: str = "ja",
) -> Tenant:
    """Create a tenant and let the other apps seed its defaults."""
    tenant = Tenant(
        slug=slug,
        name=name,
        timezone=timezone_name,
        currency=currency,
        fiscal_year_start_month=fiscal_year_start_month,
        holiday_country=holiday_country,
        language=language,
    )
    _full_clean(tenant)
    tenant.save()
    with tenant_context(tenant):
        run_tenant_created(tenant)
    return tenant


_TENANT_SETTINGS = frozenset(
    {
        "name",
        "timezone",
        "currency",
        "fiscal_year_start_month",
        "holiday_country",
        "language",
        "business_opens",
        "business_closes",
    }
)


@transaction.atomic
def tenant_update(*, tenant: Tenant, **changes: Any) -> Tenant:
    """Change a workspace's settings (only the given ones).

    A new time zone or fiscal-year start moves every row to other days and periods: the kpis
    app rebuilds the tenant's snapshots after commit. Holidays and closures are read when
    working days are counted, so a new holiday calendar shows at once.
    """
    unknown = set(changes) - _TENANT_SETTINGS
    if unknown:
        raise ValueError(f"Unknown tenant settings: {sorted(unknown)}")
    for name, value in changes.items():
        if isinstance(value, str):
            field = Tenant._meta.get_field(name)
            text_check(value, field=camel_case(name), max_length=field.max_length or 200)
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            raise ValidationFailed("A workspace needs a name.", field="name")
    if "currency" in changes:
        changes["currency"] = (changes["currency"] or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", changes["currency"]):
            raise ValidationFailed("A currency is an ISO 4217 code, e.g. JPY.", field="currency")
    for name, value in changes.items():
        setattr(locked, name, value)
    _full_clean(locked)
    locked.save(update_fields=list(changes))
    return locked


def tenant_delete(*, tenant: Tenant) -> dict[str, int]:
    """Delete a workspace and every row it owns, in one transaction; the rows deleted by
    model label.

    One DELETE per tenant-owned table (those row-level security guards), then the tenant
    row.
    NOTE: set-based, not the ORM's cascade, which loads every row's id in batches and first
    nulls each SET_NULL reference to a row it will delete anyway: 5.2 s for a workspace of
    100,000 activities, so a large one outran the web worker's timeout and rolled back. No
    delete signal is sent: its receivers mark days dirty and bump the cache versions of
    the workspace that is going.
    TRICKY: the foreign keys are checked at commit (Django creates them deferred), so the
    order of the tables does not matter; a row anywhere still referencing one of these at
    commit fails the deletion whole, and nothing is deleted.
    TRICKY: inside the workspace's own context. Row-level security shows a connection with
    no tenant in context none of the workspace's rows, so the ORM's cascade found nothing
    to delete and the tenant row's deletion then broke every foreign key at commit.
    """
    deleted: dict[str, int] = {}
    with transaction.atomic(), tenant_context(tenant.pk), connection.cursor() as cursor:
        quote = connection.ops.quote_name
        for model in rls.tenant_owned_models():
            cursor.execute(
                f"DELETE FROM {quote(model._meta.db_table)} WHERE tenant_id = %s", [tenant.pk]
            )
            if cursor.rowcount:
                deleted[model._meta.label] = cursor.rowcount
        Tenant.objects.filter(pk=tenant.pk).delete()
    return deleted


def closure_add(*, tenant: Tenant, day: dt.date, name: str = "") -> TenantClosure:
    """Close the workspace on a day besides public holidays (年末年始, お盆)."""
    day_check(day, field="date")
    text_check(name, field="name", max_length=CLOSURE_NAME_MAX, what="a closure name")
    name = name.strip()
    if len(name) > CLOSURE_NAME_MAX:
        raise ValidationFailed(
            f"A closure name has at most {CLOSURE_NAME_MAX} characters.", field="name"
        )
    with tenant_context(tenant):
        if TenantClosure.objects.filter(date=day).exists():
            raise PublicError(f"{day} is closed already.", code=ErrorCode.CONFLICT, field="date")
        try:
            with transaction.atomic():
                return TenantClosure.objects.create(tenant=tenant, date=day, name=name)
        except IntegrityError as exc:
            raise PublicError(
                f"{day} is closed already.", code=ErrorCode.CONFLICT, field="date"
            ) from exc


def closure_remove(*, tenant: Tenant, day: dt.date) -> None:
    day_check(day, field="date")
    with tenant_context(tenant):
        deleted, _ = TenantClosure.objects.filter(date=day).delete()
    if not deleted:
        raise NotFound("Closure", field="date")


def _api_token_name(name: str) -> str:
    text_check(name, field="name", max_length=API_TOKEN_NAME_MAX, what="a token name")
    name = name.strip()
    if not name or len(name) > API_TOKEN_NAME_MAX:
        raise ValidationFailed(f"Name must be 1 to {API_TOKEN_NAME_MAX} characters.", field="name")
    return name


def api_token_validate_input(
    *, name: str, scopes: Iterable[str], expires_at: dt.datetime | None
) -> tuple[str, list[str]]:
    """Normalised (name, scopes) for a new token, or ValidationFailed."""
    name = _api_token_name(name)
    scopes = list(scopes)
    if len(scopes) > 2 * len(TOKEN_SCOPES):
        raise ValidationFailed(
            f"Give at most the {len(TOKEN_SCOPES)} scopes there are.", field="scopes"
        )
    scope_list = sorted(set(scopes))
    if not scope_list:
        raise ValidationFailed("Give the token at least one scope.", field="scopes")
    unknown = [s for s in scope_list if s not in TOKEN_SCOPES]
    if unknown:
        raise ValidationFailed(
            f"Unknown or non-grantable scopes: {', '.join(shown(s) for s in unknown)}. "
            f"Allowed: {', '.join(sorted(TOKEN_SCOPES))}.",
            field="scopes",
        )
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            raise ValidationFailed("expiresAt needs a time zone offset.", field="expiresAt")
        # TRICKY: checked as a local date first, before any comparison converts it:
        # 9999-12-31T23:59-05:00 in UTC is in the year 10000, which Python cannot hold.
        if expires_at.date() > MAX_DAY:
            raise PublicError(
                f"expiresAt must be in {MAX_DAY.year} or before.",
                code=ErrorCode.OUT_OF_RANGE,
                field="expiresAt",
            )
        if expires_at <= timezone.now():
            raise ValidationFailed("expiresAt must be in the future.", field="expiresAt")
    return name, scope_list


_RATE_LIMIT_BOUNDS = {
    "requests_per_minute": API_TOKEN_MAX_REQUESTS_PER_MINUTE,
    "rows_per_minute": API_TOKEN_MAX_ROWS_PER_MINUTE,
}


def api_token_validate_limits(**limits: int | None) -> None:
    """A token's own rate limits: None (the server's default) or 1 to the bound, else
    ValidationFailed naming the field."""
    for name, value in limits.items():
        bound = _RATE_LIMIT_BOUNDS[name]
        if value is None:
            continue
        # NOTE: bool is an int in Python; True is not a limit.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
            raise ValidationFailed(
                f"{camel_case(name)} must be a whole number from 1 to {bound}, or null for "
                "the server's default.",
                field=camel_case(name),
            )


def api_token_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    expires_at: dt.datetime | None = None,
    created_by: AbstractBaseUser | None = None,
    requests_per_minute: int | None = None,
    rows_per_minute: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it and its secret string, which is shown this once only.

    Rate limits left as None follow the server's defaults (API_TOKEN_RATE_*_PER_MINUTE).
    """
    name, scope_list = api_token_validate_input(name=name, scopes=scopes, expires_at=expires_at)
    api_token_validate_limits(
        requests_per_minute=requests_per_minute, rows_per_minute=rows_per_minute
    )
    raw, parts = tokens.generate()
    with tenant_context(tenant):
        token = ApiToken.objects.create(
            tenant=tenant,
            name=name,
            key_id=parts.key_id,
            secret_hash=tokens.hash_secret(parts.secret),
            scopes=scope_list,
            expires_at=expires_at,
            created_by=created_by,
            created_by_label=created_by.get_username() if created_by else "",
            requests_per_minute=requests_per_minute,
            rows_per_minute=rows_per_minute,
        )
    return token, raw


_API_TOKEN_CHANGES = frozenset({"name", "requests_per_minute", "rows_per_minute"})


def api_token_update(*, tenant: Tenant, token_id: int, **changes: Any) -> ApiToken:
    """Rename a token of `tenant` or change its rate limits (only the given ones; a limit
    set to None follows the server's default again). Takes effect on its next request."""
    unknown = set(changes) - _API_TOKEN_CHANGES
    if unknown:
        raise ValueError(f"Unknown API token changes: {sorted(unknown)}")
    if "name" in changes:
        changes["name"] = _api_token_name(changes["name"] or "")
    api_token_validate_limits(**{k: v for k, v in changes.items() if k in _RATE_LIMIT_BOUNDS})
    with tenant_context(tenant):
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None:
            raise NotFound("API token")
        for field, value in changes.items():
            setattr(token, field, value)
        if changes:
            token.save(update_fields=list(changes))
    return token


def api_token_revoke(*, tenant: Tenant, token_id: int) -> ApiToken:
    """Revoke a token of `tenant`; revoking twice keeps the first revocation time."""
    with tenant_context(tenant):
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None:
            raise NotFound("API token")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, raw: str) -> ApiToken:
    """The usable token for a secret string, or AuthenticationFailed with a precise code."""
    parts = tokens.parse(raw)
    if parts is None:
        raise PublicError("Malformed API token.", code=ErrorCode.TOKEN_INVALID)
    # TRICKY: the tenant is unknown until the token is found, so this one look-up runs
    # across tenants, through a function that returns a token only to the caller who
    # holds its secret (tenants.cross_tenant); the hash is then compared in constant time.
    token = cross_tenant.api_token_for_key(
        key_id=parts.key_id, secret_hash=tokens.hash_secret(parts.secret)
    )
    if token is None or not tokens.secret_matches(parts.secret, token.secret_hash):
        raise PublicError("Invalid API token.", code=ErrorCode.TOKEN_INVALID)
    if token.revoked_at is not None:
        raise PublicError("This API token has been revoked.", code=ErrorCode.TOKEN_REVOKED)
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        raise PublicError("This API token has expired.", code=ErrorCode.TOKEN_EXPIRED)
    if not token.tenant.is_active:
        raise PublicError("This workspace is deactivated.", code=ErrorCode.TOKEN_INVALID)
    _touch_last_used(token, now)
    return token


def _touch_last_used(token: ApiToken, now: dt.datetime) -> None:
    resolution = dt.timedelta(seconds=settings.API_TOKEN_LAST_USED_RESOLUTION_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < resolution:
        return
    with tenant_context(token.tenant_id):
        # A conditional UPDATE: concurrent requests do not pile up writes on one row.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution), pk=token.pk
        ).update(last_used_at=now)
    token.last_used_at = now
