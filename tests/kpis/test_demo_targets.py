"""Demo targets: the demo tree works back from a KGI target through the article's rates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from kpis.demo import demo_targets_seed
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.snapshots import kpi_snapshots_rebuild
from kpis.trees import kpi_tree_ensure_default, kpi_tree_evaluate
from pipeline.demo import seed_demo
from tenants.context import tenant_context

TODAY = dt.date(2026, 5, 20)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_demo_targets_give_the_tree_required_volumes(tenant_a: Any) -> None:
    # given a seeded demo tenant with snapshots
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=TODAY)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    # when the demo targets are set
    result = demo_targets_seed(tenant=tenant_a, today=TODAY)
    # then this month's KGI target is 110 % of last month's won deals, and the tree works
    # back through 25 %, 50 % and 20 % (x 40 leads per won deal)
    assert [p.label for p in result.periods] == ["2026-04", "2026-05"]
    target = result.kgi["2026-05"]
    with tenant_context(tenant_a):
        tree = kpi_tree_ensure_default(tenant=tenant_a)
        evaluation = kpi_tree_evaluate(
            tenant=tenant_a,
            tree=tree,
            period=parse_period("2026-05"),
            scope=KpiScope.tenant(),
            today=TODAY,
        )
    required = {n.kpi.key: n.required for n in evaluation.nodes if n.kpi is not None and n.required}
    assert required["won_deals"] == target
    assert required["opportunities"] == target * 4
    assert required["meetings_set"] == target * 8
    assert required["leads"] == target * 40
    assert required["win_rate"] == Decimal(25)
    # and running it again changes nothing
    assert demo_targets_seed(tenant=tenant_a, today=TODAY).kgi == result.kgi
