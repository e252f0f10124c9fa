"""Reports reach people: one report.ready event per report (never again on regeneration),
to the members whose own view it is (opt-outs respected), in-app, by e-mail in the
workspace's language and to webhooks; never to another workspace."""

# NOTE: the messages are Japanese, with full-width parentheses.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from strawberry.relay import to_base64

from notifications.models import Event, Notification, WebhookDelivery
from reports.delivery import REPORT_READY, render_report_ready
from reports.generation import report_regenerate, reports_generate_due
from reports.models import Report, ReportSubscription
from reports.subscriptions import report_subscription_set
from tenants import members, services
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory
from tests.notifications.conftest import Receiver, endpoint, receiver  # noqa: F401
from tests.reports.conftest import at

pytestmark = pytest.mark.django_db

JULY_1 = at(2026, 7, 1, 0, 30)
SUBSCRIPTIONS = """
query($memberId: ID) {
  reportSubscriptions(memberId: $memberId) { memberId kind subscribed isDefault view { type id } }
}"""
SET = """
mutation($kind: ReportKind!, $subscribed: Boolean!, $memberId: ID) {
  setReportSubscription(kind: $kind, subscribed: $subscribed, memberId: $memberId) {
    subscriptions { kind subscribed isDefault }
    errors { code field message }
  }
}"""


@pytest.fixture(autouse=True)
def _eager(settings: Any) -> Iterator[None]:
    """Local webhook targets allowed and tasks in-process, also where a broker is set."""
    from backend.celery import app

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PUBLIC_BASE_URL = "https://kpi.example.com"
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def people(tenant_a: Any, sales: dict[str, Any]) -> dict[str, Any]:
    """sales plus an admin and a viewer of A, and an admin of B."""
    add = members.membership_add
    return sales | {
        "admin": add(tenant=tenant_a, user=UserFactory(username="ada"), role=Role.ADMIN),
        "viewer": add(tenant=tenant_a, user=UserFactory(username="vic"), role=Role.VIEWER),
    }


def _generate(tenant: Any, capture: Any) -> list[Report]:
    with capture(execute=True), tenant_context(tenant):
        return reports_generate_due(tenant=tenant, now=JULY_1)


def _events(tenant: Any) -> dict[tuple[str, str, str, str], Event]:
    """report.ready events by (kind, period, scope type, scope key) of their report."""
    with tenant_context(tenant):
        events = Event.objects.filter(event_type=REPORT_READY)
        out = {}
        for event in events:
            r = event.payload["report"]
            key = (r["kind"], r["period"], r["scope"]["type"], r["scope"]["key"])
            out[key] = event
        return out


def test_one_event_per_report_never_again_on_regeneration(
    tenant_a: Any, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    # when the due reports are generated
    created = _generate(tenant_a, django_capture_on_commit_callbacks)
    # then each has exactly one event, keyed by the report
    with tenant_context(tenant_a):
        keys = sorted(Event.objects.filter(event_type=REPORT_READY).values_list("dedup_key"))
    assert len(created) > 5
    assert keys == sorted((f"report.ready:{r.pk}",) for r in created)
    # when generation runs again and a report is regenerated
    again = _generate(tenant_a, django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        report_regenerate(tenant=tenant_a, report=created[0])
        count = Event.objects.filter(event_type=REPORT_READY).count()
    # then nothing more is told
    assert again == [] and count == len(created)


def test_recipients_per_role_and_opt_out(
    tenant_a: Any, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    ren, rio, sai = people["reps"]
    east, west = people["teams"]
    # given ren opted out of the monthly reports
    with tenant_context(tenant_a):
        report_subscription_set(tenant=tenant_a, member=rio, kind="monthly", subscribed=False)
    _generate(tenant_a, django_capture_on_commit_callbacks)
    events = _events(tenant_a)
    month = "2026-06"
    # the workspace's: admins and viewers; the executive one likewise
    workspace = sorted([people["admin"].pk, people["viewer"].pk])
    assert events[("monthly", month, "tenant", "")].recipient_ids == workspace
    assert events[("executive", month, "tenant", "")].recipient_ids == workspace
    # a team's: its managers (West has none: the event is still there for webhooks)
    assert events[("monthly", month, "team", str(east.pk))].recipient_ids == [people["manager"].pk]
    assert events[("monthly", month, "team", str(west.pk))].recipient_ids == []
    # a rep's: the rep, unless they opted out
    assert events[("monthly", month, "rep", str(ren.pk))].recipient_ids == [ren.pk]
    assert events[("monthly", month, "rep", str(sai.pk))].recipient_ids == [sai.pk]
    assert events[("monthly", month, "rep", str(rio.pk))].recipient_ids == []
    # and the in-app inbox holds the same
    with tenant_context(tenant_a):
        inbox = Notification.objects.filter(event=events[("monthly", month, "team", str(east.pk))])
        assert [n.recipient_id for n in inbox] == [people["manager"].pk]


def test_japanese_mail_with_headline_numbers_and_link(
    tenant_a: Any, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    _generate(tenant_a, django_capture_on_commit_callbacks)
    event = _events(tenant_a)[("monthly", "2026-06", "tenant", "")]
    gid = event.payload["report"]["id"]
    url = f"https://kpi.example.com/app/#report={gid}"
    sent = [
        m for m in mail.outbox if m.subject == "[Acme] 月次レポート（全社・2026-06）ができました"
    ]
    assert sorted(m.to[0] for m in sent) == ["ada@example.com", "vic@example.com"]
    message = sent[0]
    assert message.extra_headers["X-KPI-Event"] == "report.ready"
    assert "期間中のアラート: " in message.body
    assert f"コンソールで開く: {url}" in message.body
    assert "レポートの受け取りはコンソールのレポート設定で変更できます。" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and '<html lang="ja">' in html
    assert f'<a href="{url}"' in html
    # the headline lines are the stored report's numbers
    lines = event.text.splitlines()
    assert (
        any(line.startswith("KGI ") for line in lines) or event.payload["headline"]["kgi"] is None
    )


def test_english_workspace_gets_english_mail(
    tenant_a: Any, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    tenant_a.language = "en"
    tenant_a.save(update_fields=["language"])
    _generate(tenant_a, django_capture_on_commit_callbacks)
    sent = [
        m
        for m in mail.outbox
        if m.subject == "[Acme] Monthly report ready (Whole workspace, 2026-06)"
    ]
    assert len(sent) == 2
    assert "Open in the console: https://kpi.example.com/app/#report=" in sent[0].body
    assert '<html lang="en">' in sent[0].alternatives[0][0]


def test_render_headline_in_both_languages() -> None:
    payload = {
        "currency": "JPY",
        "report": {
            "kind": "executive",
            "period": "2026-06",
            "scope": {"type": "tenant", "key": "", "name": "全社"},
            "url": "https://kpi.example.com/app/#report=UmVwb3J0OjE=",
        },
        "headline": {
            "kgi": {"name": "売上", "nameEn": "Revenue", "unit": "money", "actual": "1200000.0000",
                    "target": "1500000.0000", "attainment": "0.8000"},
            "forecast": "1400000.0000",
            "forecastAttainment": "0.9333",
            "bottleneck": {"name": "商談設定数", "nameEn": "Meetings set", "attainment": "0.5000"},
            "movers": [{"name": "架電数", "nameEn": "Calls", "change": "12.5000"}],
            "alerts": 2,
        },
    }  # fmt: skip
    ja = render_report_ready(payload, "ja")
    assert ja.title == "経営層向けレポート（全社・2026-06）ができました"
    assert ja.lines[:5] == [
        "KGI 売上: 実績 1,200,000 JPY / 目標 1,500,000 JPY（達成率 80.0%）",
        "着地見込み: 1,400,000 JPY（目標比 93.3%）",
        "ボトルネック: 商談設定数（達成率 50.0%）",
        "前期間からの変化: 架電数 +12.5%",
        "期間中のアラート: 2件",
    ]
    en = render_report_ready(payload, "en")
    assert en.title == "Executive report ready (Whole workspace, 2026-06)"
    assert en.lines[0] == "KGI Revenue: 1,200,000 JPY of 1,500,000 JPY (80.0%)"
    assert en.lines[-1] == "Open in the console: https://kpi.example.com/app/#report=UmVwb3J0OjE="


def test_tenant_b_members_never_receive_a_report_of_a(
    tenant_a: Any,
    tenant_b: Any,
    people: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given B has an admin and a viewer too
    for name, role in (("bea", Role.ADMIN), ("bob", Role.VIEWER)):
        members.membership_add(tenant=tenant_b, user=UserFactory(username=name), role=role)
    # when A's reports are generated
    _generate(tenant_a, django_capture_on_commit_callbacks)
    # then B has no event and no inbox row, and no mail went to B's members
    with tenant_context(tenant_b):
        assert Event.objects.count() == 0 and Notification.objects.count() == 0
    addresses = {m.to[0] for m in mail.outbox}
    assert addresses and not addresses & {"bea@example.com", "bob@example.com"}


def test_webhook_payload_shape(
    tenant_a: Any,
    people: dict[str, Any],
    receiver: Receiver,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given an endpoint subscribed to report.ready only
    endpoint(tenant_a, receiver.url, event_types=["report.ready"])
    created = _generate(tenant_a, django_capture_on_commit_callbacks)
    # then one signed request per report
    assert len(receiver.requests) == len(created)
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.filter(state="succeeded").count() == len(created)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert {r.headers["X-KPI-Event"] for r in receiver.requests} == {"report.ready"}
    body = next(
        b for b in bodies if b["data"]["report"]["kind"] == "monthly"
        and b["data"]["report"]["scope"]["type"] == "tenant"
    )  # fmt: skip
    assert set(body) == {"id", "delivery", "type", "created", "language", "title", "text", "data"}
    assert body["type"] == "report.ready" and body["language"] == "ja"
    report = body["data"]["report"]
    with tenant_context(tenant_a):
        stored = Report.objects.get(kind="monthly", period_label="2026-06", scope_type="tenant")
    assert report == {
        "id": to_base64("Report", stored.pk),
        "kind": "monthly",
        "grain": "month",
        "period": "2026-06",
        "periodStart": "2026-06-01",
        "periodEnd": "2026-07-01",
        "scope": {"type": "tenant", "key": "", "name": "全社"},
        "language": "ja",
        "generatedAt": stored.generated_at.isoformat(),
        "url": f"https://kpi.example.com/app/#report={to_base64('Report', stored.pk)}",
    }
    assert set(body["data"]["headline"]) == {
        "kgi", "forecast", "forecastAttainment", "bottleneck", "movers", "alerts"
    }  # fmt: skip
    assert body["data"]["headline"]["alerts"] == len(stored.data["alerts"])


# --- Subscriptions over GraphQL ------------------------------------------------------------


def test_a_member_reads_and_changes_their_own_subscriptions(
    graphql: Any, tenant_a: Any, people: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    ren = people["reps"][0]
    graphql(SUBSCRIPTIONS, {}, user=ren.user, tenant="acme")  # signs in
    # session, user, tenant, membership, the choices (PostgreSQL adds the tenant context)
    with django_assert_max_num_queries(16):
        _, body = graphql(SUBSCRIPTIONS, {}, tenant="acme")
    rows = body["data"]["reportSubscriptions"]
    view = {"type": "REP", "id": to_base64("Membership", ren.pk)}
    assert rows == [
        {"memberId": to_base64("Membership", ren.pk), "kind": kind, "subscribed": True,
         "isDefault": True, "view": view}
        for kind in ("WEEKLY", "MONTHLY", "EXECUTIVE")
    ]  # fmt: skip
    _, body = graphql(SET, {"kind": "WEEKLY", "subscribed": False}, user=ren.user, tenant="acme")
    payload = body["data"]["setReportSubscription"]
    assert payload["errors"] == []
    assert payload["subscriptions"][0] == {
        "kind": "WEEKLY",
        "subscribed": False,
        "isDefault": False,
    }
    # a rep cannot change another member's
    other = {
        "kind": "WEEKLY",
        "subscribed": False,
        "memberId": to_base64("Membership", people["manager"].pk),
    }
    _, body = graphql(SET, other, user=ren.user, tenant="acme")
    assert body["data"]["setReportSubscription"]["errors"][0]["code"] == "PERMISSION_DENIED"


def test_tokens_need_a_member_and_config_write_and_b_cannot_touch_a(
    graphql: Any, tenant_a: Any, tenant_b: Any, people: dict[str, Any], token_a: str
) -> None:
    ren = people["reps"][0]
    _, body = graphql(SUBSCRIPTIONS, {}, token=token_a)
    assert (
        body["errors"][0]["extensions"] | {}
        and body["errors"][0]["extensions"]["field"] == "memberId"
    )
    _, admin_a = services.api_token_create(
        tenant=tenant_a, name="admin", scopes=["kpis:read", "config:write"]
    )
    _, admin_b = services.api_token_create(
        tenant=tenant_b, name="admin", scopes=["kpis:read", "config:write"]
    )
    args = {"kind": "MONTHLY", "subscribed": False, "memberId": to_base64("Membership", ren.pk)}
    # B's admin token: A's member is not found, and nothing changes
    _, body = graphql(SET, args, token=admin_b)
    assert body["data"]["setReportSubscription"]["errors"][0]["code"] == "NOT_FOUND"
    _, body = graphql(SUBSCRIPTIONS, {"memberId": args["memberId"]}, token=token_a)
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    # A's admin token may
    _, body = graphql(SET, args, token=admin_a)
    assert body["data"]["setReportSubscription"]["subscriptions"][1] == {
        "kind": "MONTHLY", "subscribed": False, "isDefault": False
    }  # fmt: skip


def test_admin_records_an_opt_out_once_and_only_for_its_own_members(
    client: Any, admin_a: Any, tenant_a: Any, tenant_b: Any, people: dict[str, Any]
) -> None:
    ren = people["reps"][0]
    stranger = members.membership_add(
        tenant=tenant_b, user=UserFactory(username="bo"), role=Role.REP
    )
    client.force_login(admin_a)
    url = "/admin/reports/reportsubscription/add/"
    form = {"member": ren.pk, "kind": "monthly"}  # subscribed unchecked: an opt-out
    assert client.post(url, form).status_code == 302
    again = client.post(url, form)
    assert "already has a setting" in again.content.decode()
    foreign = client.post(url, {"member": stranger.pk, "kind": "monthly"})
    assert foreign.status_code == 200  # the form again: not a choice here
    with tenant_context(tenant_a):
        rows = list(ReportSubscription.objects.values_list("member_id", "kind", "subscribed"))
    assert rows == [(ren.pk, "monthly", False)]
    assert client.get("/admin/reports/reportsubscription/").status_code == 200
