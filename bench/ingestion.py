"""Benchmark: partner ingestion of activities through GraphQL vs PostgreSQL COPY (the floor).

Run with `make bench` or `DATABASE_URL=postgres://... python -m bench`; PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from typing import Any

ACTIVITIES = 10_000
LEADS = 500
GOAL = 0.33
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


def _post(client: Any, token: str, batch: dict[str, Any]) -> dict[str, Any]:
    query = (
        "mutation($input: IngestRecordsInput!) { ingestRecords(input: $input) {"
        " activities { created rejected } leads { created } errors { code message } } }"
    )
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": query, "variables": {"input": batch}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors") or body["data"]["ingestRecords"]["errors"]:
        raise RuntimeError(f"ingestion failed: {body}")
    return body["data"]["ingestRecords"]


def _ours(run: str) -> float:
    """Rows/s of the real endpoint: Bearer token, GraphQL, middleware, service, database."""
    from django.conf import settings
    from django.test import Client

    from tenants import services

    tenant = services.tenant_create(slug=f"bench-ingest-{run}", name="Bench ingestion")
    _, token = services.api_token_create(tenant=tenant, name="bench", scopes=["records:write"])
    client = Client()
    leads = [
        {"externalId": f"{run}-L{i}", "company": f"Company {i}", "createdAt": "2025-03-01T00:00Z"}
        for i in range(LEADS)
    ]
    _post(client, token, {"sourceSystem": SOURCE, "leads": leads})
    activities = _activities(run)
    size = settings.INGEST_MAX_BATCH_ROWS
    batches = [activities[i : i + size] for i in range(0, len(activities), size)]
    started = time.perf_counter()
    created = 0
    for batch in batches:
        created += _post(client, token, {"sourceSystem": SOURCE, "activities": batch})[
            "activities"
        ]["created"]
    elapsed = time.perf_counter() - started
    if created != ACTIVITIES:
        raise RuntimeError(f"expected {ACTIVITIES} activities created, got {created}")
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
    with transaction.atomic(using="owner"), owner.cursor() as cursor:
        started = time.perf_counter()
        with cursor.cursor.copy(
            "COPY pipeline_activity (tenant_id, source_system, external_id, lead_id, type,"
            " occurred_at, call_outcome, email_delivered, email_opened, email_clicked,"
            " duration_seconds, received_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
    return ACTIVITIES / elapsed


def main() -> None:
    _setup()
    run = uuid.uuid4().hex[:8]
    ours = _ours(run)
    floor = _floor(run)
    print(
        f"bench ingestion: ours {ours:,.0f} rows/s, floor {floor:,.0f} rows/s, "
        f"ratio {ours / floor:.3f} (goal >= {GOAL})"
    )


if __name__ == "__main__":
    main()
