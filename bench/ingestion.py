"""Benchmark: partner ingestion of activities through GraphQL vs PostgreSQL COPY (the floor).

The measured path is `ingestRecordsJson`, the one a partner uses for bulk loads (rows as
JSON arrays); the typed `ingestRecords` is measured too and printed first, for comparison.
Run with `make bench` or `DATABASE_URL=postgres://... python -m bench`; PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

ACTIVITIES = 10_000
LEADS = 500
GOAL = 0.33
ROUNDS = 3
SOURCE = "bench"


def _setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if not settings.IS_POSTGRES:
        raise SystemExit("bench ingestion needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("ensure_database")
    call_command("migrate", verbosity=0, interactive=False)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def _activities(run: str) -> list[dict[str, Any]]:
    start = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
    types = ("call", "call", "call", "email", "meeting")
    return [
        {
            "externalId": f"{run}-A{i}",
            "leadExternalId": f"{run}-L{i % LEADS}",
            "type": types[i % len(types)],
            "occurredAt": (start + dt.timedelta(minutes=7 * i)).isoformat(),
            "callOutcome": "connected" if i % 5 == 0 else "",
            "durationSeconds": 60 + i % 300,
        }
        for i in range(ACTIVITIES)
    ]


# The two GraphQL paths: mutation name and input type.
PATHS = {
    "json": ("ingestRecordsJson", "IngestRecordsJsonInput"),
    "typed": ("ingestRecords", "IngestRecordsInput"),
}


def _post(client: Any, token: str, batch: dict[str, Any], path: str = "json") -> dict[str, Any]:
    mutation, input_type = PATHS[path]
    query = (
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{"
        " activities { created rejected } leads { created } errors { code message } } }"
    )
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": query, "variables": {"input": batch}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors") or body["data"][mutation]["errors"]:
        raise RuntimeError(f"ingestion failed: {body}")
    return body["data"][mutation]


@contextmanager
def _refresh_not_run_inline() -> Iterator[list[int] | None]:
    """Without a broker, record the KPI refresh each batch queues instead of running it.

    Celery runs tasks eagerly when no broker is configured, so the snapshot refresh that a
    worker does after each ingestion commit would be timed as part of the request here;
    `bench snapshots` measures that refresh. With a broker the real hook queues the task.
    """
    from django.conf import settings

    from pipeline import dirty

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    queued: list[int] = []
    with mock.patch.object(dirty, "_listeners", [queued.append]):
        yield queued


def _ours(run: str, path: str) -> float:
    """Rows/s of the real endpoint: Bearer token, GraphQL, middleware, service, database."""
    from django.conf import settings
    from django.test import Client

    from tenants import services

    run = f"{run}-{path}"
    tenant = services.tenant_create(slug=f"bench-ingest-{run}", name="Bench ingestion")
    _, token = services.api_token_create(tenant=tenant, name="bench", scopes=["records:write"])
    client = Client()
    leads = [
        {"externalId": f"{run}-L{i}", "company": f"Company {i}", "createdAt": "2025-03-01T00:00Z"}
        for i in range(LEADS)
    ]
    _post(client, token, {"sourceSystem": SOURCE, "leads": leads}, path)
    activities = _activities(run)
    size = settings.INGEST_MAX_BATCH_ROWS
    batches = [activities[i : i + size] for i in range(0, len(activities), size)]
    created = 0
    with _refresh_not_run_inline() as queued:
        started = time.perf_counter()
        for batch in batches:
            created += _post(client, token, {"sourceSystem": SOURCE, "activities": batch}, path)[
                "activities"
            ]["created"]
        elapsed = time.perf_counter() - started
    if created != ACTIVITIES:
        raise RuntimeError(f"expected {ACTIVITIES} activities created, got {created}")
    if queued is not None and len(queued) != len(batches):
        raise RuntimeError(f"expected a KPI refresh queued per batch, got {len(queued)}")
    return ACTIVITIES / elapsed


def _floor(run: str) -> float:
    """Rows/s of a bare COPY of the same rows into pipeline_activity, as the schema owner."""
    from django.db import connections, transaction

    from pipeline.models import Lead
    from tenants import services
    from tenants.context import tenant_context

    tenant = services.tenant_create(slug=f"bench-copy-{run}", name="Bench COPY floor")
    with tenant_context(tenant):
        leads = Lead.objects.bulk_create(
            Lead(
                tenant=tenant,
                source_system=SOURCE,
                external_id=f"{run}-L{i}",
                company=f"Company {i}",
            )
            for i in range(LEADS)
        )
    lead_ids = {lead.external_id: lead.pk for lead in leads}
    now = dt.datetime.now(dt.UTC)
    rows = [
        (
            tenant.pk,
            SOURCE,
            a["externalId"],
            lead_ids[a["leadExternalId"]],
            a["type"],
            dt.datetime.fromisoformat(a["occurredAt"]),
            a["callOutcome"],
            False,
            False,
            False,
            a["durationSeconds"],
            now,
        )
        for a in _activities(run)
    ]
    owner = connections["owner"]
    owner.ensure_connection()
    # NOTE: the timer includes the commit, as ours does: the foreign keys are checked there
    # (deferred), and rows not yet committed are not ingested.
    started = time.perf_counter()
    with (
        transaction.atomic(using="owner"),
        owner.cursor() as cursor,
        cursor.cursor.copy(
            "COPY pipeline_activity (tenant_id, source_system, external_id, lead_id, type,"
            " occurred_at, call_outcome, email_delivered, email_opened, email_clicked,"
            " duration_seconds, received_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    elapsed = time.perf_counter() - started
    return ACTIVITIES / elapsed


def main() -> None:
    _setup()
    rates: dict[str, list[float]] = {"typed": [], "json": [], "floor": []}
    # Rounds interleave the three measures, so load from elsewhere hits them alike; each
    # figure is the median of its rounds.
    for _ in range(ROUNDS):
        run = uuid.uuid4().hex[:8]
        rates["typed"].append(_ours(run, "typed"))
        rates["json"].append(_ours(run, "json"))
        rates["floor"].append(_floor(run))
    typed, ours, floor = (statistics.median(rates[key]) for key in ("typed", "json", "floor"))
    print(
        f"bench ingestion, typed ingestRecords (for comparison): ours {typed:,.0f} rows/s, "
        f"ratio {typed / floor:.3f}"
    )
    print(
        "bench ingestion, measured path: ingestRecordsJson (rows as JSON arrays); medians of "
        f"{ROUNDS} rounds; the KPI refresh queued after each commit is not timed (see bench "
        "snapshots)"
    )
    print(
        f"bench ingestion: ours {ours:,.0f} rows/s, floor {floor:,.0f} rows/s, "
        f"ratio {ours / floor:.3f} (goal >= {GOAL})"
    )


if __name__ == "__main__":
    main()
