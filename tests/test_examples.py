"""examples/: every GraphQL operation there runs against a small demo tenant and returns
data without errors, so the examples README.md points newcomers to stay true."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from alerts.demo import demo_alerts_seed
from kpis.demo import demo_targets_seed
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline.demo import seed_demo
from tenants import services
from tenants.context import tenant_context
from tenants.scopes import TOKEN_SCOPES
from tests.conftest import GraphQL

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TODAY = dt.date(2026, 11, 30)
_VARIABLES = re.compile(r"^# variables: (.+)$", re.MULTILINE)


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.graphql"))


def _variables(text: str) -> dict[str, Any]:
    match = _VARIABLES.search(text)
    return json.loads(match.group(1)) if match else {}


def test_the_examples_folder_has_the_first_queries_a_newcomer_needs() -> None:
    names = [path.stem for path in _examples()]
    assert names[:5] == ["01-me", "02-kpi-tree", "03-kpi-series", "04-funnel", "05-ingest-records"]
    assert {"06-alerts", "07-dashboard"} <= set(names)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_every_example_returns_data_without_errors(tenant_a: Any, graphql: GraphQL) -> None:
    # given the demo tenant as `make run` builds it, small
    seed_demo(tenant_slug="acme", leads=200, months=3, seed=42, today=TODAY)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    demo_targets_seed(tenant=tenant_a, today=TODAY)
    demo_alerts_seed(tenant=tenant_a)
    call_command("seed_default_dashboards", "--tenant", "acme")
    _, token = services.api_token_create(tenant=tenant_a, name="demo", scopes=sorted(TOKEN_SCOPES))
    for path in _examples():
        text = path.read_text()
        # when each example runs with the variables its header gives
        status, body = graphql(text, _variables(text), token=token)
        # then it answers data, no error
        assert (status, body.get("errors")) == (200, None), path.name
        assert body["data"] and all(value is not None for value in body["data"].values())
        for payload in body["data"].values():
            if isinstance(payload, dict) and "rowErrors" in payload:
                assert payload["rowErrors"] == payload["errors"] == [], path.name
