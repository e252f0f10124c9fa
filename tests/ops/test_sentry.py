"""Error tracking: scrubbed events; the SDK starts only when SENTRY_DSN is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from backend.ops.sentry import FILTERED, scrub_event

SECRET = "kpi_0123456789ab_S3cretS3cretS3cretS3cretS3cretS3cretS3c"
ROOT = Path(__file__).resolve().parents[2]


def test_the_scrubber_removes_credentials_and_tokens_everywhere() -> None:
    # given an event as the Django and Strawberry integrations build it
    event = {
        "message": f"failed for {SECRET}",
        "request": {
            "url": "https://api.example/graphql/",
            "headers": {
                "Authorization": f"Bearer {SECRET}",
                "Cookie": "sessionid=abc; csrftoken=def",
                "X-CSRFToken": "def",
                "Content-Type": "application/json",
            },
            "cookies": {"sessionid": "abc"},
            "data": {"query": "{ me { authKind } }", "variables": {"t": SECRET}},
        },
        "exception": {
            "values": [
                {
                    "value": f"bad token {SECRET}",
                    "stacktrace": {"frames": [{"vars": {"raw": SECRET, "cookie": "x"}}]},
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": f"Authorization: bearer {SECRET}"}]},
    }
    # when it is scrubbed
    scrubbed = scrub_event(event, {})
    # then no secret, cookie or credential header is left; the rest is kept
    assert SECRET not in repr(scrubbed)
    assert "sessionid" not in repr(scrubbed)
    assert "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["headers"] == {
        "Authorization": FILTERED,
        "Cookie": FILTERED,
        "X-CSRFToken": FILTERED,
        "Content-Type": "application/json",
    }
    assert scrubbed["message"] == f"failed for {FILTERED}"
    assert scrubbed["request"]["data"]["query"] == "{ me { authKind } }"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {
        "raw": FILTERED,
        "cookie": FILTERED,
    }
    assert scrubbed["breadcrumbs"]["values"][0]["message"] == f"Authorization: Bearer {FILTERED}"
    # a token's public key id alone is not a secret
    assert scrub_event({"message": "token kpi_0123456789ab"})["message"] == "token kpi_0123456789ab"


def test_header_lists_are_scrubbed_too() -> None:
    event = {"request": {"headers": [["authorization", "Bearer x"], ["accept", "*/*"]]}}
    assert scrub_event(event)["request"]["headers"] == [
        ["authorization", FILTERED],
        ["accept", "*/*"],
    ]


_PROBE = (
    "import django; django.setup(); import sentry_sdk; c = sentry_sdk.get_client(); "
    "print(c.is_active(), c.options.get('send_default_pii'), "
    "c.options.get('before_send').__name__ if c.options.get('before_send') else None, "
    "sorted(n for n in ('django', 'celery', 'strawberry') "
    "if c.get_integration(n) is not None) if c.is_active() else [])"
)


def _settings_probe(**env: str) -> str:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "DATABASE_"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="backend.settings", DJANGO_DEBUG="0", **env)
    environment.setdefault("DJANGO_SECRET_KEY", "t")
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_the_sdk_starts_only_with_a_dsn_and_never_sends_pii() -> None:
    assert _settings_probe() == "False None None []"
    assert _settings_probe(SENTRY_DSN="https://public@127.0.0.1:9/1") == (
        "True False scrub_event ['celery', 'django', 'strawberry']"
    )
