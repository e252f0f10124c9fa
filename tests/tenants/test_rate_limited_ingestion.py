"""Per-token row limits on ingestion: whole batches refused with 429, replays free, headers."""

from __future__ import annotations

import pytest

from pipeline.models import IngestionRequest, Lead
from tenants import services
from tenants.context import tenant_context

INGEST = """
mutation Ingest($input: IngestRecordsInput!, $key: String) {
  ingestRecords(input: $input, idempotencyKey: $key) {
    leads { created rejected }
    replayed
    errors { code message field }
  }
}
"""
INGEST_JSON = """
mutation Ingest($input: IngestRecordsJsonInput!, $key: String) {
  ingestRecordsJson(input: $input, idempotencyKey: $key) {
    leads { created rejected }
    replayed
    errors { code message field }
  }
}
"""
MUTATIONS = {"typed": (INGEST, "ingestRecords"), "json": (INGEST_JSON, "ingestRecordsJson")}


def batch(prefix: str, good: int, bad: int = 0) -> dict:
    """`good` valid leads and `bad` leads with an unreadable createdAt (row errors)."""
    leads = [
        {"externalId": f"{prefix}{i}", "company": "Co", "createdAt": "2025-04-01T10:00:00+09:00"}
        for i in range(good)
    ]
    leads += [
        {"externalId": f"{prefix}x{i}", "company": "Co", "createdAt": "yesterday"}
        for i in range(bad)
    ]
    return {"sourceSystem": "sfa", "leads": leads}


def lead_ids(tenant) -> list[str]:
    with tenant_context(tenant):
        return sorted(Lead.objects.values_list("external_id", flat=True))


@pytest.fixture
def writer(tenant_a) -> str:
    _, secret = services.api_token_create(
        tenant=tenant_a, name="sfa", scopes=["records:write"], rows_per_minute=10
    )
    return secret


@pytest.mark.parametrize("how", ["typed", "json"])
def test_a_batch_over_the_remaining_rows_is_refused_whole_and_good_and_bad_rows_count(
    post, clock, tenant_a, writer, how
):
    query, field = MUTATIONS[how]
    # given a first mixed batch of 4 good and 2 bad rows (10 rows a minute)
    first = post(query, {"input": batch("A", good=4, bad=2)}, token=writer)
    assert first.status_code == 200
    assert first.json()["data"][field]["leads"] == {"created": 4, "rejected": 2}
    assert (first["X-RateLimit-Rows-Limit"], first["X-RateLimit-Rows-Remaining"]) == ("10", "4")
    # when a second batch of 5 rows (3 good, 2 bad) comes in the same minute
    refused = post(query, {"input": batch("B", good=3, bad=2)}, token=writer)
    # then it is refused whole: 429, Retry-After, a typed error, and nothing stored
    assert refused.status_code == 429
    assert refused["Retry-After"] == "70"  # 6 * (1 - t/60) + 5 <= 10 at t = 10 s next minute
    assert refused["X-RateLimit-Rows-Remaining"] == "4"
    assert refused.json() == {
        "data": {
            field: {
                "leads": None,
                "replayed": False,
                "errors": [
                    {
                        "code": "RATE_LIMITED",
                        "message": (
                            "This API token may send 10 rows per minute; retry in 70 seconds."
                        ),
                        "field": None,
                    }
                ],
            }
        }
    }
    assert lead_ids(tenant_a) == ["A0", "A1", "A2", "A3"]
    # and a batch of 4 that fits is stored, leaving nothing
    fitting = post(query, {"input": batch("C", good=2, bad=2)}, token=writer)
    assert fitting.status_code == 200
    assert fitting.json()["data"][field]["leads"] == {"created": 2, "rejected": 2}
    assert fitting["X-RateLimit-Rows-Remaining"] == "0"
    assert lead_ids(tenant_a) == ["A0", "A1", "A2", "A3", "C0", "C1"]


def test_the_refused_batch_passes_after_retry_after(post, clock, tenant_a, writer):
    # given a refused batch
    post(INGEST, {"input": batch("A", good=6)}, token=writer)
    refused = post(INGEST, {"input": batch("B", good=5)}, token=writer)
    assert refused.status_code == 429
    # when the partner waits as told and sends it again
    clock.advance(int(refused["Retry-After"]))
    retried = post(INGEST, {"input": batch("B", good=5)}, token=writer)
    # then it is stored
    assert retried.status_code == 200
    assert retried.json()["data"]["ingestRecords"]["leads"] == {"created": 5, "rejected": 0}
    assert len(lead_ids(tenant_a)) == 11


def test_a_replayed_idempotent_batch_costs_no_rows_even_at_the_limit(post, clock, tenant_a, writer):
    # given a stored batch of 4 under a key, and 6 more rows that use up the minute
    first = post(INGEST, {"input": batch("A", good=4), "key": "k-1"}, token=writer)
    post(INGEST, {"input": batch("B", good=6)}, token=writer)
    # when the first batch is sent again with its key
    replay = post(INGEST, {"input": batch("A", good=4), "key": "k-1"}, token=writer)
    # then it gets the stored result, though the token has no rows left
    assert replay.status_code == 200
    assert replay.json()["data"]["ingestRecords"] == {
        **first.json()["data"]["ingestRecords"],
        "replayed": True,
    }
    assert "X-RateLimit-Rows-Remaining" not in replay
    with tenant_context(tenant_a):
        assert IngestionRequest.objects.count() == 1
    assert post(INGEST, {"input": batch("C", good=1)}, token=writer).status_code == 429


def test_a_batch_the_service_refuses_gives_its_rows_back(post, clock, tenant_a, writer):
    # given a JSON batch whose activities are not a list (refused whole by the service)
    bad = {"sourceSystem": "sfa", "leads": batch("A", good=8)["leads"], "activities": "x"}
    # when it is sent, then a batch of 10 rows
    refused = post(INGEST_JSON, {"input": bad}, token=writer)
    full = post(INGEST_JSON, {"input": batch("B", good=10)}, token=writer)
    # then the first stored nothing and cost nothing
    assert refused.status_code == 200
    assert refused.json()["data"]["ingestRecordsJson"]["errors"][0]["code"] == "VALIDATION"
    assert full.status_code == 200
    assert full["X-RateLimit-Rows-Remaining"] == "0"
    assert lead_ids(tenant_a) == [f"B{i}" for i in range(10)]


def test_a_batch_larger_than_the_whole_minute_is_too_large_not_rate_limited(
    post, clock, tenant_a, writer
):
    # when a token with 10 rows a minute sends 11 rows
    response = post(INGEST, {"input": batch("A", good=11)}, token=writer)
    # then waiting would never help: BATCH_TOO_LARGE, no Retry-After, nothing stored or spent
    assert response.status_code == 200
    assert "Retry-After" not in response
    assert response.json()["data"]["ingestRecords"]["errors"] == [
        {
            "code": "BATCH_TOO_LARGE",
            "message": (
                "This API token may send at most 10 rows per minute; this batch has 11. "
                "Send smaller batches."
            ),
            "field": None,
        }
    ]
    assert lead_ids(tenant_a) == []
    assert post(INGEST, {"input": batch("B", good=10)}, token=writer).status_code == 200


def test_row_budgets_are_per_token_across_tenants(post, clock, tenant_a, tenant_b, writer):
    # given A's writer has used its 10 rows
    post(INGEST, {"input": batch("A", good=10)}, token=writer)
    _, writer_b = services.api_token_create(
        tenant=tenant_b, name="sfa", scopes=["records:write"], rows_per_minute=10
    )
    # when B's writer sends 10 rows
    response = post(INGEST, {"input": batch("B", good=10)}, token=writer_b)
    # then B is served from its own budget and its rows land in B only
    assert response.status_code == 200
    assert response["X-RateLimit-Rows-Remaining"] == "0"
    assert lead_ids(tenant_b) == [f"B{i}" for i in range(10)]
    assert lead_ids(tenant_a) == [f"A{i}" for i in range(10)]


def test_rows_default_comes_from_the_settings(post, clock, tenant_a, settings):
    # given a default of 3 rows a minute and a token without its own limit
    settings.API_TOKEN_RATE_ROWS_PER_MINUTE = 3
    _, secret = services.api_token_create(tenant=tenant_a, name="sfa", scopes=["records:write"])
    # when it sends 2 rows, then 2 more
    first = post(INGEST, {"input": batch("A", good=2)}, token=secret)
    second = post(INGEST, {"input": batch("B", good=2)}, token=secret)
    # then the second is refused
    assert (first.status_code, first["X-RateLimit-Rows-Limit"]) == (200, "3")
    assert second.status_code == 429
    assert lead_ids(tenant_a) == ["A0", "A1"]


def test_users_batches_are_not_row_limited(graphql, clock, tenant_a, admin_a, settings):
    # given a default of 1 row a minute
    settings.API_TOKEN_RATE_ROWS_PER_MINUTE = 1
    # when a signed-in admin sends 3 rows
    status, body = graphql(INGEST, {"input": batch("A", good=3)}, user=admin_a, tenant="acme")
    # then they are stored
    assert status == 200
    assert body["data"]["ingestRecords"]["leads"] == {"created": 3, "rejected": 0}
