"""The read replica (DATABASE_REPLICA_URL): GraphQL query operations read through it, scoped
to the request's tenant; mutations, and reads after a write, use the primary.

On PostgreSQL a second alias on the test database stands in for the replica (a separate
connection, so the queries each alias ran can be counted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from backend.replica import REPLICA, ReplicaRouter, reading_from_replica, replica_reads
from pipeline.models import Lead
from tenants.models import Tenant
from tests.conftest import GraphQL

LEADS = "query { leads(first: 10) { edges { node { company } } } }"
CREATE_LEAD = """mutation($input: CreateLeadInput!) {
  createLead(input: $input) { lead { company } errors { code } } }"""


@pytest.fixture(scope="module", autouse=True)
def replica_alias() -> Iterator[None]:
    """A "replica" alias on the test database, as DATABASE_REPLICA_URL would add it.

    Module-scoped so it exists before pytest-django checks the aliases a test names.
    """
    if not settings.IS_POSTGRES or REPLICA in settings.DATABASES:
        yield
        return
    replica = {**connections["default"].settings_dict, "TEST": {"MIRROR": "default"}}
    connections.settings[REPLICA] = replica  # the same dict as settings.DATABASES
    yield
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


def _lead_selects(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if 'FROM "pipeline_lead"' in q["sql"]]


def test_without_a_replica_reads_stay_on_the_primary(tenant_a: Tenant) -> None:
    router = ReplicaRouter()
    assert router.db_for_read(Lead) is None
    assert router.allow_migrate(REPLICA, "pipeline") is False
    assert router.allow_migrate("default", "pipeline") is None
    if REPLICA not in settings.DATABASES:
        with replica_reads(tenant_a.pk):
            assert not reading_from_replica()
            assert router.db_for_read(Lead) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_a_funnel_reads_its_data_version_and_rows_on_the_same_copy(
    tenant_a: Tenant, token_a: str, graphql: GraphQL
) -> None:
    # given a lead of tenant A
    status, body = graphql(CREATE_LEAD, {"input": {"company": "Acme lead"}}, token=token_a)
    assert (status, body["data"]["createLead"]["errors"]) == (200, [])
    # when A asks for a funnel
    with (
        CaptureQueriesContext(connections[REPLICA]) as replica,
        CaptureQueriesContext(connections["default"]) as primary,
    ):
        status, body = graphql('query { funnel(period: "2026-06") { mode } }', token=token_a)
    assert status == 200 and "errors" not in body, body
    # then its version (kpis.data_generations), its settings and its rows came from the replica: a
    # version read on the primary could name rows a lagging replica does not have yet
    read = [q["sql"] for q in replica.captured_queries]
    assert any("kpis_kpidatageneration" in sql for sql in read)
    assert any("jit" in sql for sql in read)
    assert any("pipeline_stagetransition" in sql for sql in read)
    for sql in (q["sql"] for q in primary.captured_queries):
        assert "kpis_kpidatageneration" not in sql and "pipeline_stagetransition" not in sql


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_a_query_reads_through_the_replica_and_sees_only_its_tenant(
    tenant_a: Tenant, tenant_b: Tenant, token_a: str, token_b: str, graphql: GraphQL
) -> None:
    # given a lead in each tenant, written through the primary
    for token, company in ((token_a, "Acme lead"), (token_b, "Beta lead")):
        status, body = graphql(CREATE_LEAD, {"input": {"company": company}}, token=token)
        assert (status, body["data"]["createLead"]["errors"]) == (200, [])
    # when tenant A lists its leads
    with (
        CaptureQueriesContext(connections[REPLICA]) as replica,
        CaptureQueriesContext(connections["default"]) as primary,
    ):
        status, body = graphql(LEADS, token=token_a)
    # then the leads were read on the replica, not on the primary, and only A's
    assert status == 200, body
    assert [e["node"]["company"] for e in body["data"]["leads"]["edges"]] == ["Acme lead"]
    assert _lead_selects(replica)
    assert not _lead_selects(primary)
    # the replica's transaction carried the tenant proof row-level security checks
    assert any("app_current_tenant" in q["sql"] for q in replica.captured_queries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_a_mutation_never_touches_the_replica(
    tenant_a: Tenant, token_a: str, graphql: GraphQL
) -> None:
    with (
        CaptureQueriesContext(connections[REPLICA]) as replica,
        CaptureQueriesContext(connections["default"]) as primary,
    ):
        status, body = graphql(CREATE_LEAD, {"input": {"company": "New"}}, token=token_a)
    assert (status, body["data"]["createLead"]["errors"]) == (200, [])
    assert replica.captured_queries == []
    assert any(q["sql"].startswith('INSERT INTO "pipeline_lead"') for q in primary.captured_queries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", REPLICA])
def test_after_a_write_reads_go_back_to_the_primary(tenant_a: Tenant) -> None:
    router = ReplicaRouter()
    with replica_reads(tenant_a.pk):
        assert router.db_for_read(Lead) == REPLICA
        read_there = Lead(tenant=tenant_a, company="x")
        read_there._state.db = REPLICA
        # a row read from the replica is written to the primary
        assert router.db_for_write(Lead, instance=read_there) == "default"
        # and from then on this operation reads its own writes
        assert router.db_for_read(Lead) is None
        assert not reading_from_replica()
    assert router.db_for_read(Lead) is None


def test_settings_add_the_replica_only_when_configured() -> None:
    assert settings.DATABASE_ROUTERS == ["backend.replica.ReplicaRouter"]
    if settings.IS_POSTGRES:
        return
    assert REPLICA not in settings.DATABASES  # SQLite: no replica, whatever the env says
