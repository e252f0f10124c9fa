"""Deal stages over GraphQL: add, rename, reorder, re-weigh, delete; bad input, who may, tenant
isolation, and the weighted pipeline following a new win probability."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from strawberry.relay import to_base64

from kpis.snapshots import kpi_snapshots_rebuild
from pipeline import services as pipeline_services
from pipeline.models import DealStage
from tenants import services
from tenants.context import tenant_context

STAGES = "{ dealStages { id name order winProbability isWon isLost } }"
CREATE = """mutation($input: CreateDealStageInput!) {
  createDealStage(input: $input) {
    dealStage { name order winProbability isWon isLost } errors { code field message }
  }
}"""
UPDATE = """mutation($input: UpdateDealStageInput!) {
  updateDealStage(input: $input) {
    dealStage { name order winProbability } errors { code field message }
  }
}"""
DELETE = """mutation($id: ID!) {
  deleteDealStage(id: $id) { deletedId errors { code field message } }
}"""
WEIGHTED = (
    """{ kpiValues(period: "2026-04", kpis: ["weighted_pipeline"]) { value { numerator } } }"""
)
DEFAULTS = ["初回商談", "ヒアリング", "提案", "見積提示", "最終交渉", "受注", "失注"]


@pytest.fixture
def config_a(tenant_a: Any) -> str:
    scopes = ["config:write", "records:read", "kpis:read"]
    return services.api_token_create(tenant=tenant_a, name="ops", scopes=scopes)[1]


def run(graphql: Any, query: str, variables: dict[str, Any] | None, token: str) -> Any:
    status, body = graphql(query, variables, token=token)
    assert status == 200 and "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


def names(tenant: Any) -> list[tuple[int, str]]:
    with tenant_context(tenant):
        return list(DealStage.objects.order_by("order").values_list("order", "name"))


def stage_id(tenant: Any, name: str) -> str:
    with tenant_context(tenant):
        return to_base64("DealStage", DealStage.objects.get(name=name).pk)


def test_add_reorder_rename_and_delete_keep_orders_without_gaps(graphql, tenant_a, config_a):
    # when a stage is added at 3 and another at the end
    added = run(
        graphql, CREATE, {"input": {"name": "デモ", "winProbability": "0.3", "order": 3}}, config_a
    )
    assert added == {
        "dealStage": {"name": "デモ", "order": 3, "winProbability": "0.3000",
                      "isWon": False, "isLost": False},
        "errors": [],
    }  # fmt: skip
    run(graphql, CREATE, {"input": {"name": "保留", "winProbability": "0"}}, config_a)
    assert [name for _, name in names(tenant_a)] == [*DEFAULTS[:2], "デモ", *DEFAULTS[2:], "保留"]
    # when the last is moved first and renamed
    change = {"id": stage_id(tenant_a, "保留"), "order": 1, "name": "様子見"}
    moved = run(graphql, UPDATE, {"input": change}, config_a)
    assert moved["dealStage"] == {"name": "様子見", "order": 1, "winProbability": "0.0000"}
    # when an unused stage is deleted
    deleted = run(graphql, DELETE, {"id": stage_id(tenant_a, "デモ")}, config_a)
    assert deleted["errors"] == []
    # then the orders stay 1..n
    assert names(tenant_a) == list(enumerate(["様子見", *DEFAULTS], start=1))
    listed = run(graphql, STAGES, None, config_a)
    assert [(s["order"], s["name"]) for s in listed] == names(tenant_a)


@pytest.mark.parametrize(
    ("input", "code", "field"),
    [
        ({"name": "  ", "winProbability": "0.5"}, "VALIDATION", "name"),
        ({"name": "提案", "winProbability": "0.5"}, "CONFLICT", "name"),
        ({"name": "x", "winProbability": "1.5"}, "VALIDATION", "winProbability"),
        ({"name": "x", "winProbability": "-0.1"}, "VALIDATION", "winProbability"),
        ({"name": "x", "winProbability": "0.12345"}, "VALIDATION", "winProbability"),
        ({"name": "x", "winProbability": "1", "isWon": True, "isLost": True}, "VALIDATION",
         "isLost"),
        ({"name": "x", "winProbability": "0.5", "order": 0}, "VALIDATION", "order"),
        ({"name": "x", "winProbability": "0.5", "order": 9}, "VALIDATION", "order"),
    ],
)  # fmt: skip
def test_bad_new_stages_are_typed_errors_and_change_nothing(
    graphql, tenant_a, config_a, input, code, field
):
    before = names(tenant_a)
    payload = run(graphql, CREATE, {"input": input}, config_a)
    assert payload["dealStage"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert names(tenant_a) == before


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"name": None}, "VALIDATION", "name"),
        ({"name": "受注"}, "CONFLICT", "name"),
        ({"winProbability": "2"}, "VALIDATION", "winProbability"),
        ({"isLost": True}, "VALIDATION", "isLost"),  # 受注 is won
        ({"order": 8}, "VALIDATION", "order"),
    ],
)
def test_bad_stage_changes_are_typed_errors_and_change_nothing(
    graphql, tenant_a, config_a, change, code, field
):
    before = names(tenant_a)
    target = "受注" if field == "isLost" else "提案"
    payload = run(graphql, UPDATE, {"input": {"id": stage_id(tenant_a, target), **change}},
                  config_a)  # fmt: skip
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert names(tenant_a) == before
    with tenant_context(tenant_a):
        assert DealStage.objects.get(name="受注").is_won


def test_a_stage_with_deals_or_history_stays(graphql, tenant_a, config_a):
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="A")
        first = DealStage.objects.get(name="初回商談")
        deal = pipeline_services.deal_create(tenant=tenant_a, lead=lead, amount=Decimal(1))
        pipeline_services.deal_move_stage(deal=deal, stage=DealStage.objects.get(name="提案"))
    # the deal is in 提案; 初回商談 is in its history only
    for name in ("提案", first.name):
        payload = run(graphql, DELETE, {"id": stage_id(tenant_a, name)}, config_a)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("CONFLICT", "id")]
    assert [name for _, name in names(tenant_a)] == DEFAULTS


def test_stages_need_config_write_and_stay_in_their_tenant(graphql, tenant_a, tenant_b, token_a):
    config_b = services.api_token_create(tenant=tenant_b, name="ops", scopes=["config:write"])[1]
    target = stage_id(tenant_a, "提案")
    denied = run(graphql, CREATE, {"input": {"name": "x", "winProbability": "0.5"}}, token_a)
    assert [e["code"] for e in denied["errors"]] == ["PERMISSION_DENIED"]
    for query, variables in (
        (UPDATE, {"input": {"id": target, "winProbability": "0.9"}}),
        (DELETE, {"id": target}),
    ):
        payload = run(graphql, query, variables, config_b)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", "id")]
    assert [name for _, name in names(tenant_a)] == DEFAULTS
    with tenant_context(tenant_a):
        assert DealStage.objects.get(name="提案").win_probability == Decimal("0.4")


def test_a_new_win_probability_rebuilds_the_weighted_pipeline(
    graphql, tenant_a, config_a, monkeypatch, django_capture_on_commit_callbacks
):
    # given a deal of 1,000,000 in 提案 (40 %) since April, counted
    at = dt.datetime(2026, 4, 10, 1, tzinfo=dt.UTC)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="A", created_at=at)
        pipeline_services.deal_create(
            tenant=tenant_a, lead=lead, amount=Decimal(1_000_000), created_at=at,
            stage=DealStage.objects.get(name="提案"),
        )  # fmt: skip
        kpi_snapshots_rebuild(tenant=tenant_a)
    assert run(graphql, WEIGHTED, None, config_a)[0]["value"]["numerator"] == "400000.000000"
    queued: list[int] = []
    monkeypatch.setattr("kpis.snapshots.scheduling.kpi_rebuild_schedule", queued.append)
    # when it is renamed, nothing is rebuilt; when re-weighed to 55 %, one rebuild is queued
    with django_capture_on_commit_callbacks(execute=True):
        run(graphql, UPDATE, {"input": {"id": stage_id(tenant_a, "提案"), "name": "ご提案"}},
            config_a)  # fmt: skip
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        run(graphql, UPDATE, {"input": {"id": stage_id(tenant_a, "ご提案"),
                                        "winProbability": "0.55"}}, config_a)  # fmt: skip
    assert queued == [tenant_a.pk]
    # then once it ran, April's weighted pipeline follows
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    assert run(graphql, WEIGHTED, None, config_a)[0]["value"]["numerator"] == "550000.000000"


def test_a_new_workspace_gets_default_stages_in_its_language(graphql: Any, db: None) -> None:
    # given an English-speaking US workspace and a Japanese one
    english = services.tenant_create(
        slug="us-co", name="US Co", timezone_name="America/New_York", currency="USD",
        holiday_country="US", language="en",
    )  # fmt: skip
    japanese = services.tenant_create(slug="jp-co", name="JP Co")
    # then each has the same process, named in its language
    english_names = [name for _, name in names(english)]
    assert english_names == [
        "First meeting", "Discovery", "Proposal", "Quote", "Negotiation", "Won", "Lost"
    ]  # fmt: skip
    assert [name for _, name in names(japanese)] == DEFAULTS
    with tenant_context(english):
        stages = list(DealStage.objects.order_by("order"))
    assert [str(s.win_probability) for s in stages] == [
        "0.1000", "0.2000", "0.4000", "0.6000", "0.8000", "1.0000", "0.0000"
    ]  # fmt: skip
    assert [(s.is_won, s.is_lost) for s in stages][-2:] == [(True, False), (False, True)]
    # and over GraphQL the English workspace's token sees only its English stages
    token = services.api_token_create(tenant=english, name="ops", scopes=["records:read"])[1]
    listed = run(graphql, STAGES, None, token)
    assert [stage["name"] for stage in listed] == english_names
