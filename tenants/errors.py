"""Typed, public errors raised by services and returned to clients as data."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CONFLICT = "CONFLICT"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    TENANT_REQUIRED = "TENANT_REQUIRED"
    NOT_A_MEMBER = "NOT_A_MEMBER"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    RATE_LIMITED = "RATE_LIMITED"


def camel_case(name: str) -> str:
    """A Python field name as the API spells it (`fiscal_year_start_month` →
    `fiscalYearStartMonth`), for the `field` of an error."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class PublicError(Exception):
    """An error whose message is safe to show to the client, with a machine-readable code."""

    code: ErrorCode = ErrorCode.VALIDATION

    def __init__(self, message: str, *, code: ErrorCode | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class ValidationFailed(PublicError):
    code = ErrorCode.VALIDATION


class NotFound(PublicError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, what: str = "Object", *, field: str | None = None):
        # Same message for a missing row and another tenant's row: nothing leaks.
        super().__init__(f"{what} not found.", field=field)


class PermissionDenied(PublicError):
    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, message: str = "You do not have permission to do this."):
        super().__init__(message)


class AuthenticationFailed(PublicError):
    code = ErrorCode.UNAUTHENTICATED
