"""The kpiTree response cache: served again only while nothing it reads has changed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis.graphql import tree_cache
from kpis.graphql.tree_cache import enabled as real_enabled
from kpis.snapshots import kpi_snapshots_refresh_dirty
from kpis.versions import kpi_read_version
from pipeline.dirty import mark_days_dirty
from tenants import services
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """On for these tests whatever the cache: this process is the only writer here, so its
    own memory is shared enough (the PostgreSQL run uses Redis, where it is on anyway)."""
    monkeypatch.setattr(tree_cache, "enabled", lambda: True)


TREE = """query($period: String!) {
  kpiTree(period: $period) {
    nodes { kpi { key } target actual { numerator computedAt pending } }
  }
}"""
TRIVIAL = "query { __typename }"
INGEST = """mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) { leads { created } activities { created rejected } }
}"""
SET_TARGET = """mutation($input: SetKpiTargetInput!) {
  setKpiTarget(input: $input) { errors { code field } }
}"""


def _ingest(graphql: Any, token: str, calls: list[str], *, lead: bool = False) -> None:
    records: dict[str, Any] = {
        "sourceSystem": "crm",
        "activities": [
            {
                "externalId": external_id,
                "leadExternalId": "L-1",
                "type": "call",
                "callOutcome": "connected",
                "occurredAt": "2026-11-02T10:00:00+09:00",
            }
            for external_id in calls
        ],
    }
    if lead:
        records["leads"] = [
            {"externalId": "L-1", "company": "Example KK", "createdAt": "2026-11-02T09:30:00+09:00"}
        ]
    status, body = graphql(INGEST, {"input": records}, token=token)
    assert status == 200 and "errors" not in body, body
    assert body["data"]["ingestRecords"]["activities"] == {"created": len(calls), "rejected": 0}


def _calls(graphql: Any, token: str, period: str = "2026-11") -> dict[str, Any]:
    status, body = graphql(TREE, {"period": period}, token=token)
    assert status == 200 and "errors" not in body, body
    return next(
        n for n in body["data"]["kpiTree"]["nodes"] if (n["kpi"] or {}).get("key") == "calls"
    )


def _queries(graphql: Any, query: str, variables: dict[str, Any] | None, token: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        status, body = graphql(query, variables, token=token)
    assert status == 200 and "errors" not in body, body
    return len(captured.captured_queries)


def test_the_cache_is_used_only_when_shared(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    # a process's own memory: never (another process's writes would not bump it)
    monkeypatch.setattr(tree_cache, "cache", LocMemCache("kpis-test", {}))
    assert real_enabled() is False
    # Redis (CACHE_URL): yes, unless turned off
    monkeypatch.setattr(tree_cache, "cache", RedisCache("redis://127.0.0.1:1/0", {}))
    assert real_enabled() is True
    settings.KPI_TREE_CACHE_SECONDS = 0
    assert real_enabled() is False


def test_ingest_reads_pending_then_the_refresh_gives_the_new_numbers(
    graphql: Any, tenant_a: Any, token_a: str
) -> None:
    # given two calls counted (refreshed) and the tree read once (so its answer is cached)
    _ingest(graphql, token_a, ["A-1", "A-2"], lead=True)
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    first = _calls(graphql, token_a)
    assert (first["actual"]["numerator"], first["actual"]["pending"]) == ("2", False)
    assert _calls(graphql, token_a) == first  # served again, unchanged
    # when a third call is ingested (its refresh not yet run)
    _ingest(graphql, token_a, ["A-3"])
    # then the tree says pending at once, with the old numbers and their computedAt
    pending = _calls(graphql, token_a)
    assert pending["actual"] == {
        "numerator": "2",
        "computedAt": first["actual"]["computedAt"],
        "pending": True,
    }
    # and once refreshed, the new numbers, no longer pending, computed later
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    fresh = _calls(graphql, token_a)
    assert (fresh["actual"]["numerator"], fresh["actual"]["pending"]) == ("3", False)
    assert fresh["actual"]["computedAt"] > first["actual"]["computedAt"]


def test_a_new_target_is_seen_at_once(graphql: Any, tenant_a: Any) -> None:
    # given the tree read once by a planner
    _, token = services.api_token_create(
        tenant=tenant_a, name="planner", scopes=["kpis:read", "kpis:write"]
    )
    assert _calls(graphql, token)["target"] is None
    # when a target is set for November
    status, body = graphql(
        SET_TARGET,
        {"input": {"kpi": "calls", "period": "2026-11", "value": "1200"}},
        token=token,
    )
    assert status == 200 and body["data"]["setKpiTarget"]["errors"] == [], body
    # then the next read shows it
    assert _calls(graphql, token)["target"] == "1200.0000"


def test_a_cached_answer_costs_the_queries_of_a_trivial_query(
    graphql: Any, tenant_a: Any, token_a: str
) -> None:
    # given a first read of each month (evaluated: more queries)
    _calls(graphql, token_a, "2026-11")
    _calls(graphql, token_a, "2026-10")
    trivial = _queries(graphql, TRIVIAL, None, token_a)
    # when each is read again, then it costs what `{ __typename }` costs, whatever the month
    assert _queries(graphql, TREE, {"period": "2026-11"}, token_a) == trivial
    assert _queries(graphql, TREE, {"period": "2026-10"}, token_a) == trivial
    # and a version bump (any write) makes the next read evaluate again
    version = kpi_read_version(tenant_a.pk)
    services.closure_add(tenant=tenant_a, day=dt.date(2026, 11, 20), name="offsite")
    assert kpi_read_version(tenant_a.pk) > version
    assert _queries(graphql, TREE, {"period": "2026-11"}, token_a) > trivial


def test_tenants_never_share_answers(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_a: str, token_b: str
) -> None:
    # given tenant A's tree read (and cached) with two calls counted
    _ingest(graphql, token_a, ["A-1", "A-2"], lead=True)
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    assert _calls(graphql, token_a)["actual"]["numerator"] == "2"
    # when B asks the same query, then B gets its own (empty) numbers
    assert _calls(graphql, token_b)["actual"] == {
        "numerator": "0",
        "computedAt": None,
        "pending": False,
    }
    # and B's writes leave A's answer as it was
    _ingest(graphql, token_b, ["B-1"], lead=True)
    assert _calls(graphql, token_a)["actual"]["numerator"] == "2"
    assert _calls(graphql, token_b)["actual"]["pending"] is True


def test_a_token_without_kpis_read_gets_the_error_not_the_cached_answer(
    graphql: Any, tenant_a: Any, token_a: str
) -> None:
    # given the tree cached for a reader
    _calls(graphql, token_a)
    _, writer = services.api_token_create(tenant=tenant_a, name="writer", scopes=["records:write"])
    # when a token without kpis:read asks the same query
    _, body = graphql(TREE, {"period": "2026-11"}, token=writer)
    # then it is refused as before
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_errors_and_other_root_fields_are_not_cached(
    graphql: Any, tenant_a: Any, token_a: str
) -> None:
    # a bad period answers its error every time (nothing kept)
    for _ in range(2):
        _, body = graphql(TREE, {"period": "2026-13"}, token=token_a)
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    # an operation with another root field is executed every time
    mixed = 'query { kpiTree(period: "2026-11") { headcount } me { tenant { slug } } }'
    counts = [_queries(graphql, mixed, None, token_a) for _ in range(2)]
    assert counts[0] == counts[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('query { kpiTree(period: "2026-11") { headcount } }', True),
        ('query { a: kpiTree(period: "2026-11") { headcount } __typename }', True),
        ("query { __typename }", False),
        ('query { kpiTree(period: "2026-11") { headcount } me { scopes } }', False),
        ('query { ...F } fragment F on Query { kpiTree(period: "2026-11") { headcount } }', False),
        ("mutation { __typename }", False),
    ],
)
def test_cacheable_operations(query: str, expected: bool) -> None:
    from graphql import parse

    assert tree_cache.cacheable(parse(query), None) is expected


def test_a_dirty_mark_bumps_its_tenants_version_at_once(tenant_a: Any, tenant_b: Any) -> None:
    # given both tenants' versions
    a, b = kpi_read_version(tenant_a.pk), kpi_read_version(tenant_b.pk)
    # when a day of A is marked, not yet committed (no on-commit listener has run)
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)])
    # then A's version moved and B's did not
    assert kpi_read_version(tenant_a.pk) > a
    assert kpi_read_version(tenant_b.pk) == b


class _OtherRequestComputing:
    """The shared cache as seen while another request computes every answer: the lock is
    always held by it; its answer (`answer`) appears after `misses` reads, or never."""

    def __init__(self, real: Any, answer: Any = None, misses: int = 2) -> None:
        self.real, self.answer, self.misses = real, answer, misses
        self.locks: list[str] = []
        self.deleted: list[str] = []

    def get(self, key: str, *args: Any) -> Any:
        self.misses -= 1
        return self.answer if self.answer is not None and self.misses < 0 else None

    def add(self, key: str, *args: Any, **kwargs: Any) -> bool:
        self.locks.append(key)
        return False

    def set(self, key: str, *args: Any, **kwargs: Any) -> None:
        self.real.set(key, *args, **kwargs)

    def delete(self, key: str) -> None:
        self.deleted.append(key)


def test_a_reader_waits_for_the_answer_another_request_is_computing(
    graphql: Any, tenant_a: Any, token_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _queries(graphql, TRIVIAL, None, token_a)  # the token's first use writes its last use
    trivial = _queries(graphql, TRIVIAL, None, token_a)
    # given another request computing the answer, which it keeps after two looks
    other = _OtherRequestComputing(tree_cache.cache, answer={"kpiTree": {"nodes": []}})
    monkeypatch.setattr(tree_cache, "cache", other)
    # when the tree is asked, then the other request's answer is served, nothing evaluated
    assert _queries(graphql, TREE, {"period": "2026-11"}, token_a) == trivial
    _, body = graphql(TREE, {"period": "2026-11"}, token=token_a)
    assert body["data"] == {"kpiTree": {"nodes": []}}
    # and the lock it never held is left to its holder
    assert other.locks and other.deleted == []


def test_a_waiter_computes_the_answer_itself_when_the_wait_runs_out(
    graphql: Any, tenant_a: Any, token_a: str, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # given another request that holds the lock and never keeps an answer
    settings.KPI_TREE_CACHE_WAIT_SECONDS = 0.02
    monkeypatch.setattr(tree_cache, "cache", _OtherRequestComputing(tree_cache.cache))
    # when the tree is asked, then it is computed here: the real numbers, no error
    assert _calls(graphql, token_a)["actual"] == {
        "numerator": "0",
        "computedAt": None,
        "pending": False,
    }


def test_the_computing_request_releases_its_lock(
    graphql: Any, tenant_a: Any, token_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[str] = []
    real_add = tree_cache.cache.add

    def add(key: str, *args: Any, **kwargs: Any) -> bool:
        taken.append(key)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(tree_cache.cache, "add", add)
    # a computed answer, and an answer with an error (nothing kept): no lock left behind
    _calls(graphql, token_a)
    graphql(TREE, {"period": "2026-13"}, token=token_a)
    locks = [key for key in taken if key.endswith(":computing")]
    assert len(locks) == 2
    assert all(tree_cache.cache.get(key) is None for key in locks)
