"""GraphQL error types: typed mutation errors as data, and masking of everything unexpected."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.relay.types import GlobalIDValueError

from tenants.errors import ErrorCode as ErrorCodeEnum
from tenants.errors import PublicError

logger = logging.getLogger("graphql.errors")

ErrorCode = strawberry.enum(ErrorCodeEnum, name="ErrorCode", description="Why a request failed.")


@strawberry.type(description="A typed error returned by a mutation; nothing was changed.")
class MutationError:
    code: ErrorCode
    message: str
    field: str | None = strawberry.field(
        default=None, description="The input field at fault, if one is."
    )
    index: int | None = strawberry.field(
        default=None, description="For batch inputs: the position of the row at fault."
    )


def mutation_error(error: PublicError, *, index: int | None = None) -> MutationError:
    return MutationError(code=error.code, message=error.message, field=error.field, index=index)


T = TypeVar("T")


def run_mutation(build: Callable[[], T], on_error: Callable[[list[MutationError]], T]) -> T:
    """Call a mutation's service; a PublicError becomes typed errors in the payload."""
    try:
        return build()
    except PublicError as error:
        return on_error([mutation_error(error)])


# Messages from the relay pagination helpers are about the client's own arguments.
_PUBLIC_VALUE_ERROR_PREFIXES = (
    "Argument 'first'",
    "Argument 'last'",
    "Argument 'before'",
    "Argument 'after'",
)


class PublicErrorsOnly(MaskErrors):
    """Mask every error except our PublicErrors, GraphQL syntax/validation errors and bad ids.

    Masked errors are logged with their stack trace; the client sees "Unexpected error.".
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._public(error) for error in errors]

    def _public(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None:
            return error  # syntax, validation and limit errors: about the query itself
        if isinstance(original, GraphQLError) and error.path is None:
            # A variable GraphQL could not coerce ("Int cannot represent ..."): about the
            # client's input, as clear as the same value written inline.
            return self._rewrite(error, error.message, ErrorCodeEnum.VALIDATION)
        if isinstance(original, PublicError):
            return self._rewrite(error, original.message, original.code)
        if isinstance(original, GlobalIDValueError):
            return self._rewrite(error, "Invalid global ID.", ErrorCodeEnum.VALIDATION)
        if isinstance(original, ValueError) and str(original).startswith(
            _PUBLIC_VALUE_ERROR_PREFIXES
        ):
            return self._rewrite(error, str(original), ErrorCodeEnum.VALIDATION)
        logger.error("Unexpected GraphQL error", exc_info=original)
        return self._rewrite(error, self.error_message, "INTERNAL")

    @staticmethod
    def _rewrite(error: GraphQLError, message: str, code: str) -> GraphQLError:
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": str(code)},
        )
