"""The declared mutations and queries of tenants/graphql/operations.py, on a schema of their own."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import strawberry

from tenants.errors import NotFound, PermissionDenied
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.rate_limits import LimitKind, RateLimited


@dataclass
class FakeContext:
    """Just what the declared fields call: a principal with these scopes."""

    scopes: set[str]
    calls: list[str] = field(default_factory=list)

    def require_scope(self, scope: str) -> str:
        self.calls.append(scope)
        if scope not in self.scopes:
            raise PermissionDenied(f"This needs the '{scope}' permission.")
        return "tenant"


@strawberry.type
class ThingPayload(MutationPayload):
    name: str | None = None


@strawberry.type
class DescribedPayload(MutationPayload):
    errors: list[str] = strawberry.field(default_factory=list, description="Own errors.")
    count: int = 0


class Boom(Exception):
    pass


@strawberry.type
class Query:
    @query(scope="things:read")
    def thing(self) -> str:
        return "a thing"


@strawberry.type
class Mutation:
    @mutation(scope="things:write", description="Make a thing.")
    def make_thing(self, name: str) -> ThingPayload:
        if name == "missing":
            raise NotFound("Thing", field="name")
        if name == "limited":
            raise RateLimited(kind=LimitKind.ROWS, limit=1, retry_after=3)
        if name == "boom":
            raise Boom("not public")
        return ThingPayload(name=name)

    @mutation(scope=None)
    def open_thing(self) -> ThingPayload:
        return ThingPayload(name="open")


schema = strawberry.Schema(query=Query, mutation=Mutation)


def run(document: str, *scopes: str) -> dict:
    result = schema.execute_sync(document, context_value=FakeContext(set(scopes)))
    return {"data": result.data, "errors": [e.message for e in result.errors or []]}


MAKE = 'mutation { makeThing(name: "%s") { name errors { code field message } } }'


def test_the_body_runs_with_the_scope():
    assert run(MAKE % "x", "things:write") == {
        "data": {"makeThing": {"name": "x", "errors": []}},
        "errors": [],
    }


def test_without_the_scope_the_payload_says_so_and_the_body_does_not_run():
    assert run(MAKE % "boom") == {
        "data": {
            "makeThing": {
                "name": None,
                "errors": [
                    {
                        "code": "PERMISSION_DENIED",
                        "field": None,
                        "message": "This needs the 'things:write' permission.",
                    }
                ],
            }
        },
        "errors": [],
    }


def test_public_errors_keep_their_code_and_field():
    assert run(MAKE % "missing", "things:write")["data"]["makeThing"]["errors"] == [
        {"code": "NOT_FOUND", "field": "name", "message": "Thing not found."}
    ]
    # An app's own PublicError subclass keeps its own code.
    assert run(MAKE % "limited", "things:write")["data"]["makeThing"]["errors"] == [
        {
            "code": "RATE_LIMITED",
            "field": None,
            "message": "This API token may send 1 rows per minute; retry in 3 seconds.",
        }
    ]


def test_other_exceptions_are_not_turned_into_payload_errors():
    result = run(MAKE % "boom", "things:write")
    assert result["data"] is None
    assert result["errors"] == ["not public"]


def test_a_mutation_without_a_scope_checks_none():
    context = FakeContext(set())
    result = schema.execute_sync("mutation { openThing { name } }", context_value=context)
    assert result.data == {"openThing": {"name": "open"}}
    assert context.calls == []


def test_a_scoped_query_is_a_top_level_error_without_its_scope():
    assert run("{ thing }", "things:read") == {"data": {"thing": "a thing"}, "errors": []}
    assert run("{ thing }") == {
        "data": None,
        "errors": ["This needs the 'things:read' permission."],
    }


def test_errors_is_the_payload_s_last_field_unless_it_declares_its_own():
    printed = str(schema)
    assert "type ThingPayload {\n  name: String\n  errors: [MutationError!]!\n}" in printed
    assert ThingPayload().errors == []
    assert [f.name for f in DescribedPayload.__strawberry_definition__.fields] == [
        "errors",
        "count",
    ]


def test_a_mutation_must_return_a_payload():
    @strawberry.type
    class Bad:
        @mutation(scope="x")
        def bad(self) -> str:
            return ""

    with pytest.raises(TypeError, match="bad must return a MutationPayload"):
        strawberry.Schema(query=Query, mutation=Bad)
