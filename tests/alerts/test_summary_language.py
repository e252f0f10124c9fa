"""A pace alert's summary is written on read, in the reader's language, from stored numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from alerts.explaining import pace_summary
from alerts.models import Alert
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from tenants.context import tenant_context
from tests.alerts.conftest import MAY, evaluate, make_rule, snapshot

pytestmark = pytest.mark.django_db

ALERTS = """
query($lang: String) {
  alerts { items { explanation { neededPerRemainingDay remainingWorkingDays
    summary default: summary ja: summary(language: "ja") en: summary(language: "en")
    asked: summary(language: $lang) } } }
}"""


@pytest.fixture
def pace_a(tenant_a: Any) -> Alert:
    # 180 meetings planned for May, 109 done with 7 of 18 working days left: 71 / 7 a day
    make_rule(tenant_a, kpi_key="meetings_set", kind="behind_pace", threshold=100)
    with tenant_context(tenant_a):
        kpi_target_set(
            tenant=tenant_a,
            kpi_key="meetings_set",
            period=MAY,
            scope=KpiScope.tenant(),
            value=Decimal(180),
            set_by=None,
        )
    snapshot(tenant_a, MAY, KpiScope.tenant(), meetings=109)
    evaluate(tenant_a)
    with tenant_context(tenant_a):
        return Alert.objects.get()


def _explanation(graphql: Any, token: str, lang: str | None = None) -> dict[str, Any]:
    _, body = graphql(ALERTS, {"lang": lang}, token=token)
    (item,) = body["data"]["alerts"]["items"]
    return item["explanation"]


def test_summary_in_japanese_and_english(graphql: Any, pace_a: Alert, token_a: str) -> None:
    x = _explanation(graphql, token_a, "en")
    assert x["remainingWorkingDays"] == 7
    assert x["ja"] == "商談設定数を1日あたりあと10.1"
    assert x["en"] == "10.1 more meetings set a day"
    assert x["asked"] == x["en"]
    # no language: the workspace's (Japanese by default)
    assert x["default"] == x["ja"]


def test_default_follows_the_workspace_language(
    graphql: Any, tenant_a: Any, pace_a: Alert, token_a: str
) -> None:
    tenant_a.language = "en"
    tenant_a.save(update_fields=["language"])
    assert _explanation(graphql, token_a)["default"] == "10.1 more meetings set a day"


def test_old_rows_with_stored_english_text_are_rebuilt(
    graphql: Any, tenant_a: Any, pace_a: Alert, token_a: str
) -> None:
    # given a row written before summaries were localized
    with tenant_context(tenant_a):
        Alert.objects.filter(pk=pace_a.pk).update(
            explanation=pace_a.explanation | {"summary": "10.1 more meetings set a day"}
        )
    x = _explanation(graphql, token_a)
    assert x["ja"] == x["default"] == "商談設定数を1日あたりあと10.1"
    assert x["en"] == "10.1 more meetings set a day"


def test_unknown_language_is_refused(graphql: Any, pace_a: Alert, token_a: str) -> None:
    _, body = graphql(ALERTS, {"lang": "fr"}, token=token_a)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "language"


def test_non_pace_or_on_target_alerts_have_no_summary() -> None:
    assert pace_summary({"kind": "below_value", "neededPerRemainingDay": "1"}, "en") is None
    assert pace_summary({"kind": "behind_pace", "neededPerRemainingDay": None}, "ja") is None


def test_money_uses_the_currency() -> None:
    x = {
        "kind": "behind_pace",
        "kpi": "won_amount",
        "kpiName": "受注金額",
        "kpiNameEn": "Won amount",
        "unit": "money",
        "neededPerRemainingDay": "123456.78",
    }
    assert pace_summary(x, "ja", currency="JPY") == "受注金額を1日あたりあと123,457 JPY"
    assert pace_summary(x, "en", currency="JPY") == "123,457 JPY more won amount a day"
