"""Suite-wide fixtures: tenants, principals and a GraphQL client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tenants import members
from tenants.scopes import Role
from tests.factories import TenantFactory, UserFactory, api_token

# Transactional tests flush tables between tests, which needs TRUNCATE for the app role.
settings.DATABASE_APP_GRANT_TRUNCATE = True
# Statistics upkeep uses the owner connection, which a test may only touch when it says so
# (databases="__all__"); tests/pipeline/test_statistics.py turns it on.
settings.PLANNER_STATISTICS_UPKEEP = False


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest, django_test_environment: None, django_db_blocker: Any
) -> Any:
    """Create and migrate the test database as the schema owner; the app role then uses it.

    On PostgreSQL the "default" alias is the unprivileged app role, which can neither
    create a database nor change the schema, so the owner alias does both and "default"
    is pointed at the same test database (row-level security then holds in every test).
    """
    if not settings.IS_POSTGRES:
        yield request.getfixturevalue("_sqlite_db_setup")
        return
    from django.db import connections

    with django_db_blocker.unblock():
        owner = connections["owner"]
        old_name = owner.settings_dict["NAME"]
        owner.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        connections["default"].close()
        connections["default"].creation.set_as_test_mirror(owner.settings_dict)
        settings.DATABASES["default"]["NAME"] = owner.settings_dict["NAME"]
        if "replica" in settings.DATABASES:  # DATABASE_REPLICA_URL: the test database too
            connections["replica"].close()
            connections["replica"].creation.set_as_test_mirror(owner.settings_dict)
    yield
    with django_db_blocker.unblock():
        connections["default"].close()
        owner.creation.destroy_test_db(old_name, verbosity=0)


@pytest.fixture(scope="session")
def _sqlite_db_setup(django_test_environment: None, django_db_blocker: Any) -> Any:
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (row-level security / concurrency)")
    skip_worker = pytest.mark.skip(reason="needs CELERY_BROKER_URL and a real Celery worker")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)
        if "celery_worker" in item.keywords and settings.CELERY_TASK_ALWAYS_EAGER:
            item.add_marker(skip_worker)


@pytest.fixture
def tenant_a(db: None) -> Any:
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def tenant_b(db: None) -> Any:
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def admin_a(tenant_a: Any) -> Any:
    user = UserFactory(username="alice")
    members.membership_add(tenant=tenant_a, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def token_a(tenant_a: Any) -> str:
    secret = api_token(tenant_a, "records:read", "records:write", "kpis:read", name="partner")
    return secret


@pytest.fixture
def token_b(tenant_b: Any) -> str:
    secret = api_token(tenant_b, "records:read", "records:write", "kpis:read", name="partner")
    return secret


GraphQL = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def graphql(client: Client) -> GraphQL:
    """POST a GraphQL request; returns (status, body). Pass token=, or user= and tenant=."""

    def run(
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        user: Any = None,
        tenant: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        extra: dict[str, str] = dict(headers or {})
        if token is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if user is not None:
            client.force_login(user)
        if tenant is not None:
            extra["HTTP_X_TENANT"] = tenant
        response = client.post(
            "/graphql/",
            data=json.dumps({"query": query, "variables": variables or {}}),
            content_type="application/json",
            **extra,
        )
        return response.status_code, response.json()

    return run


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in-process for this test, also on the PostgreSQL run, where a broker is
    configured and nothing would consume them (worker tests start their own worker)."""
    from backend.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
