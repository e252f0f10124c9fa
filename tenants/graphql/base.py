"""The base of every tenant-owned GraphQL type, and the one door from a client id to a row."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, TypeVar

import strawberry
from django.db.models import Model, QuerySet
from strawberry import relay

from tenants.errors import NotFound, ValidationFailed, camel_case
from tenants.graphql.context import Info

M = TypeVar("M", bound=Model)


def scope_to_request(queryset: QuerySet[M], info: Info | None) -> QuerySet[M]:
    """Only the request tenant's rows; nothing at all for a request without a tenant."""
    tenant = info.context.tenant if info is not None else None
    if tenant is None:
        return queryset.none()
    return queryset.filter(tenant_id=tenant.pk)


class TenantScoped:
    """Mixin for strawberry-django types of tenant-owned models.

    strawberry-django calls `get_queryset` for lists, connections and node look-ups, so a
    resolver cannot return another tenant's row even if it forgets to filter.
    """

    @classmethod
    def get_queryset(cls, queryset: QuerySet[M], info: Info, **kwargs: Any) -> QuerySet[M]:
        return scope_to_request(queryset, info)


def resolve_global_id(
    info: Info,
    global_id: relay.GlobalID | str,
    *,
    model: type[M],
    type_name: str,
    what: str | None = None,
    field: str | None = None,
) -> M:
    """The request tenant's `model` row for a client id; another tenant's id is "not found".

    Every id a client sends (arguments and references inside mutation inputs) goes through
    here, never through strawberry-django's default-manager look-ups.
    """
    what = what or model._meta.verbose_name.capitalize()
    if isinstance(global_id, str):
        try:
            global_id = relay.GlobalID.from_id(global_id)
        except ValueError as exc:
            raise NotFound(what, field=field) from exc
    if global_id.type_name != type_name:
        raise NotFound(what, field=field)
    try:
        pk = int(global_id.node_id)
    except ValueError as exc:
        raise NotFound(what, field=field) from exc
    obj = scope_to_request(model._default_manager.all(), info).filter(pk=pk).first()
    if obj is None:
        raise NotFound(what, field=field)
    return obj


def given(value: Any) -> bool:
    """Whether an optional input field was sent (null included): update inputs change only
    the fields sent."""
    return value is not strawberry.UNSET


def sent_changes(
    input: object, fields: Iterable[str], *, nullable: Collection[str] = ()
) -> dict[str, Any]:
    """The fields of an update input that were sent, by their Python names. A null sent for a
    field that cannot be cleared is a ValidationFailed naming its GraphQL field."""
    changes = {name: getattr(input, name) for name in fields if given(getattr(input, name))}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise ValidationFailed("This field cannot be null.", field=camel_case(name))
    return changes
