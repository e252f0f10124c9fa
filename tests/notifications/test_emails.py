"""E-mails of events: text and HTML, in the tenant's language, one per recipient, once."""

# NOTE: the messages are Japanese, with full-width parentheses.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from notifications.models import Event
from tenants.context import tenant_context
from tests.notifications.conftest import alert_payload, publish

pytestmark = pytest.mark.django_db

JA_LINES = [
    "ルール: コネクト率 60%未満",
    "KPI: コネクト率 / 対象: Rita / 期間: 2026-05（2026-05-01〜2026-05-31、営業日 11/18日経過）",
    "実績: 40.0%（基準: 60.0%）",
    "母数: 50",
    "改善アクション: 架電時間帯を見直す",
]
EN_LINES = [
    "Rule: コネクト率 60%未満",
    "KPI: Connect rate / Scope: Rita / Period: 2026-05 (2026-05-01 to 2026-05-31, 11 of 18 "
    "working days elapsed)",
    "Value: 40.0% (threshold: 60.0%)",
    "Sample: 50",
    "Improvement action (改善アクション): 架電時間帯を見直す",
]


def test_japanese_email(
    tenant_a: Any, member_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    mika, ken = member_factory(tenant_a, "mika"), member_factory(tenant_a, "ken")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        publish(tenant_a, recipients=[mika.pk, ken.pk], channels=["email"])
    # then: one message each, nobody sees the other's address
    assert [m.to for m in mail.outbox] == [["mika@example.com"], ["ken@example.com"]]
    message = mail.outbox[0]
    assert message.subject == "[Acme] アラート: コネクト率が基準を下回りました（Rita・2026-05）"
    assert message.body == (
        "アラート: コネクト率が基準を下回りました（Rita・2026-05）\n\n"
        + "".join(line + "\n" for line in JA_LINES)
        + "\n--\nAcme の KPI プラットフォームからのお知らせです。\n"
        "通知の受け取り方はアラート設定で変更できます。\n"
    )
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert '<html lang="ja">' in html
    assert '<p style="margin: 4px 0;">実績: 40.0%（基準: 60.0%）</p>' in html
    assert message.extra_headers["X-KPI-Event"] == "alert.fired"


def test_english_email(
    tenant_b: Any, member_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given an English-speaking workspace
    tenant_b.language = "en"
    tenant_b.save(update_fields=["language"])
    bo = member_factory(tenant_b, "bo")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        publish(tenant_b, recipients=[bo.pk], channels=["email", "in_app"])
    # then
    (message,) = mail.outbox
    assert (
        message.subject == "[Globex] Alert: Connect rate fell below its threshold (Rita, 2026-05)"
    )
    assert message.body == (
        "Alert: Connect rate fell below its threshold (Rita, 2026-05)\n\n"
        + "".join(line + "\n" for line in EN_LINES)
        + "\n--\nA notice from the KPI platform of Globex.\n"
        "Change what you receive in the alert rule's settings.\n"
    )
    assert '<html lang="en">' in message.alternatives[0][0]


def test_html_escapes_what_members_typed(
    tenant_a: Any, member_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mika = member_factory(tenant_a, "mika")
    payload = alert_payload(improvementAction="<script>x</script>")
    with django_capture_on_commit_callbacks(execute=True):
        publish(tenant_a, recipients=[mika.pk], channels=["email"], payload=payload)
    html = mail.outbox[0].alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_sent_once_and_not_to_inactive_or_addressless(
    tenant_a: Any, member_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    from notifications import services

    mika, gone = member_factory(tenant_a, "mika"), member_factory(tenant_a, "gone")
    silent = member_factory(tenant_a, "silent")
    silent.user.email = ""
    silent.user.save(update_fields=["email"])
    with tenant_context(tenant_a):
        type(gone).objects.filter(pk=gone.pk).update(is_active=False)
    # when: published, then the task runs a second time
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(tenant_a, recipients=[mika.pk, gone.pk, silent.pk], channels=["email"])
    with tenant_context(tenant_a):
        again = services.event_emails_send(tenant=tenant_a, event_id=event.pk)
        emailed_at = Event.objects.get().emailed_at
    # then
    assert [m.to for m in mail.outbox] == [["mika@example.com"]]
    assert again == 0 and emailed_at is not None
