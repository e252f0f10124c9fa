"""GraphQL error types: typed mutation errors as data, and masking of everything unexpected."""

from __future__ import annotations

import logging
import re

import strawberry
from django.db import DataError
from graphql.error import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

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


# Messages from the relay pagination helpers are about the client's own arguments.
_PUBLIC_VALUE_ERROR_PREFIXES = (
    "Argument 'first'",
    "Argument 'last'",
    "Argument 'before'",
    "Argument 'after'",
)


# Errors raised before any resolver ran (they have no path) whose cause is the request itself:
# a variable or literal that a scalar, an enum or an input type refuses, or an operation
# that the document does not name.
_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    GraphQLError,
    StrawberryInputCoercionError,
    CannotGetOperationTypeError,
    InvalidOperationTypeError,
    ValueError,
    TypeError,
    KeyError,
    ArithmeticError,
)
# Python's reprs of internal objects (`<object at 0x7f...>`) never reach a client.
_OBJECT_REPR = re.compile(r"<[^<>]*\bat 0x[0-9a-fA-F]+>")
_MAX_MESSAGE = 400


def _innermost(error: BaseException) -> BaseException:
    """The exception at the bottom of a chain of GraphQLError.original_error."""
    seen = 0
    while isinstance(error, GraphQLError) and error.original_error is not None and seen < 10:
        error = error.original_error
        seen += 1
    return error


def request_error_message(error: GraphQLError) -> str:
    """graphql-core's message for an error in the request (it names the variable and the
    path in it), without Python internals and at most _MAX_MESSAGE characters."""
    message = error.message
    cause = _innermost(error)
    if not isinstance(cause, GraphQLError | StrawberryInputCoercionError):
        # A scalar's parser raised a plain Python error: its text may be an internal repr
        # (Decimal's "[<class 'decimal.ConversionSyntax'>]"), so only the context is kept.
        detail = str(cause)
        if detail and detail in message:
            message = message.replace(detail, "").rstrip(" .;:") + "."
    message = _OBJECT_REPR.sub("<object>", message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return message


def _is_request_error(error: GraphQLError) -> bool:
    """Whether an error with a cause is about the request, not a failure of ours."""
    return error.path is None and isinstance(error.original_error, _REQUEST_ERRORS)


class PublicErrorsOnly(MaskErrors):
    """Mask every error except our PublicErrors, errors in the request and bad ids.

    Errors in the request (syntax, validation, limits, variables a type refuses) keep
    graphql-core's message with the code VALIDATION. Masked errors are logged with their
    stack trace; the client sees "Unexpected error." with the code INTERNAL.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._public(error) for error in errors]

    def _public(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None:
            # Syntax, validation and limit errors: about the query itself.
            if error.extensions and "code" in error.extensions:
                return error
            return self._rewrite(error, request_error_message(error), ErrorCodeEnum.VALIDATION)
        if isinstance(original, PublicError):
            return self._rewrite(error, original.message, original.code, field=original.field)
        if isinstance(original, GlobalIDValueError):
            return self._rewrite(error, "Invalid global ID.", ErrorCodeEnum.VALIDATION)
        if isinstance(original, ValueError) and str(original).startswith(
            _PUBLIC_VALUE_ERROR_PREFIXES
        ):
            return self._rewrite(error, str(original), ErrorCodeEnum.VALIDATION)
        if _is_request_error(error):
            return self._rewrite(error, request_error_message(error), ErrorCodeEnum.VALIDATION)
        if isinstance(original, ValueError | DataError) and _NUL_REFUSED in str(original):
            # NOTE: belt and braces: services refuse NUL in text themselves, with the field;
            # a NUL that slips through reaches PostgreSQL's driver, which refuses it before
            # sending anything (nothing was written by that statement).
            return self._rewrite(
                error, "Text cannot contain NUL (0x00) characters.", ErrorCodeEnum.VALIDATION
            )
        logger.error("Unexpected GraphQL error", exc_info=original)
        return self._rewrite(error, self.error_message, "INTERNAL")

    @staticmethod
    def _rewrite(
        error: GraphQLError, message: str, code: str, *, field: str | None = None
    ) -> GraphQLError:
        extensions = {"code": str(code)}
        if field:
            extensions["field"] = field  # the argument at fault, as in MutationError.field
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )


# psycopg's refusal of a string with a NUL character (PostgreSQL text cannot hold one).
_NUL_REFUSED = "NUL (0x00)"
