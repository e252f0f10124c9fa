"""The webhook endpoint admin form validates through the service (URL, event types)."""

from __future__ import annotations

from typing import Any

import pytest

from notifications.admin import WebhookEndpointForm
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db


def test_admin_form_refuses_what_the_service_refuses(tenant_a: Any, settings: Any) -> None:
    # given
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    data = {
        "name": "ops",
        "url": "https://93.184.216.34/hook",
        "event_types": '["alert.fired", "alert.fired"]',
        "format": "json",
        "is_active": True,
    }
    with tenant_context(tenant_a):
        # when
        metadata = WebhookEndpointForm(data=data | {"url": "http://169.254.169.254/"})
        unknown = WebhookEndpointForm(data=data | {"event_types": '["alert.exploded"]'})
        good = WebhookEndpointForm(data=data)
        # then
        assert metadata.errors == {
            "url": ["The URL points at a private, loopback, link-local or metadata address."]
        }
        assert unknown.errors == {"event_types": ["Unknown event types: alert.exploded."]}
        assert good.is_valid(), good.errors
        assert good.cleaned_data["event_types"] == ["alert.fired"]
