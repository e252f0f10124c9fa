"""Error tracking (Sentry), switched on by SENTRY_DSN alone; credentials never leave."""

from __future__ import annotations

import re
from typing import Any

FILTERED = "[Filtered]"
# Headers that carry credentials, compared lower-case.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-csrftoken"}
)
# An API token anywhere in a string (`kpi_<key id>_<secret>`); the key id alone is public.
_TOKEN_PATTERN = re.compile(r"\bkpi_[0-9a-f]{12}_[A-Za-z0-9_\-]+")
_BEARER_PATTERN = re.compile(r"(?i)\bbearer\s+\S+")


def _scrub_string(value: str) -> str:
    return _BEARER_PATTERN.sub(f"Bearer {FILTERED}", _TOKEN_PATTERN.sub(FILTERED, value))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_string(value)
    if isinstance(value, dict):
        return {
            key: (
                FILTERED
                if isinstance(key, str) and key.lower() in _SECRET_HEADERS | {"cookies"}
                else _scrub(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's `before_send`: drop cookies and credential headers, mask API tokens
    wherever they appear (messages, exception values, local variables, breadcrumbs)."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: FILTERED if name.lower() in _SECRET_HEADERS else value
                for name, value in headers.items()
            }
        elif isinstance(headers, list):  # [[name, value], ...]
            request["headers"] = [
                [name, FILTERED if str(name).lower() in _SECRET_HEADERS else value]
                for name, value in headers
            ]
    return _scrub(event)


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    """Start the Sentry SDK with the Django, Celery and Strawberry integrations."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.strawberry import StrawberryIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(),
            # Our GraphQL view is sync (transactions and RLS need it).
            StrawberryIntegration(async_execution=False),
        ],
    )
