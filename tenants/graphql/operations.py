"""Declared GraphQL operations: a mutation or query says its scope, and this module checks it.

    @mutation(scope=Scope.KPIS_WRITE, description="...")
    def create_thing(self, info: Info, input: CreateThingInput) -> ThingPayload:
        tenant = info.context.require_tenant()
        return ThingPayload(thing=services.thing_create(tenant=tenant, ...))

A mutation's resolver returns its payload (a MutationPayload) or raises a PublicError (the
apps' own typed errors are subclasses and keep their codes); the error becomes the payload's
`errors`, as data. A query's scope error stays a top-level GraphQL error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from tenants.errors import PublicError
from tenants.graphql.context import Info
from tenants.graphql.errors import MutationError, mutation_error


class MutationPayload:
    """The base of every mutation's payload: `errors`, empty when the mutation succeeded.

    Declare the payload's own fields with defaults (the error payload has only `errors`).
    """

    errors: list[MutationError]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = inspect.get_annotations(cls)
        if "errors" in own:  # a payload that describes its errors itself
            return
        # TRICKY: the base is not a dataclass, so `errors` is added to each payload's own
        # fields, last: a dataclass base would put it first, and reorder the schema.
        cls.__annotations__ = {**own, "errors": list[MutationError]}
        cls.errors = strawberry.field(default_factory=list)  # type: ignore[assignment]


class _Scoped(FieldExtension):
    """Refuses a field to a principal without the scope (None: any principal, the field
    checks who may call it itself)."""

    def __init__(self, scope: str | None) -> None:
        self.scope = scope

    def check(self, info: Info) -> None:
        if self.scope is not None:
            info.context.require_scope(self.scope)

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        self.check(info)
        return next_(source, info, **kwargs)


class _Mutation(_Scoped):
    """Also turns a PublicError raised by the resolver into the payload's `errors`."""

    def apply(self, field: StrawberryField) -> None:
        payload = field.type
        if not (isinstance(payload, type) and issubclass(payload, MutationPayload)):
            raise TypeError(f"Mutation {field.python_name} must return a MutationPayload.")
        self.payload = payload

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            return super().resolve(next_, source, info, **kwargs)
        except PublicError as error:
            return self.payload(errors=[mutation_error(error)])


def mutation(*, scope: str | None, **options: Any) -> Any:
    """`strawberry.mutation` for a resolver returning a MutationPayload: the scope is checked
    before it runs, and a PublicError it raises is returned in the payload's `errors`.

    scope=None is for the few mutations open to every member (they check who calls).
    """
    return strawberry.mutation(extensions=[_Mutation(scope)], **options)


def query(
    *args: Any, scope: str, field: Callable[..., Any] = strawberry.field, **options: Any
) -> Any:
    """A query field refused (a top-level PERMISSION_DENIED) without the scope: a
    `strawberry.field`, or the strawberry-django decorator given as `field`
    (`field=strawberry_django.connection`) with its own arguments."""
    return field(*args, extensions=[_Scoped(scope)], **options)
