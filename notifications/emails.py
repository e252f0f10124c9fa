"""E-mails of events: text and HTML from per-language templates (ja / en)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from notifications.events import event_type_spec
from notifications.models import Event
from tenants.models import Tenant

LANGUAGES = ("ja", "en")


def _link(payload: dict) -> str | None:
    """The page an event points to (payload `report.url`, `alert.url` or `url`), if any:
    only http(s) links are shown."""
    candidates = [payload.get("url")] + [
        item.get("url") for item in payload.values() if isinstance(item, dict)
    ]
    for url in candidates:
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url
    return None


def event_email_messages(
    *, tenant: Tenant, event: Event, addresses: list[str]
) -> list[EmailMultiAlternatives]:
    """One message per address (recipients never see each other), in the event's language."""
    language = event.language if event.language in LANGUAGES else "en"
    spec = event_type_spec(event.event_type)
    footer = (spec.email_footer or {}).get(language) if spec else None
    url = _link(event.payload)
    context = {
        "tenant": tenant,
        "title": event.title,
        # The link is shown as a button in HTML; the text keeps the renderer's own line.
        "lines": [line for line in event.text.splitlines() if not (url and line.endswith(url))],
        "text_lines": event.text.splitlines(),
        "event_type": event.event_type,
        "url": url,
        "footer": None if footer is None else footer.format(tenant=tenant.name),
    }
    with translation.override(language):
        text = render_to_string(f"notifications/email/event.{language}.txt", context)
        html = render_to_string(f"notifications/email/event.{language}.html", context)
    subject = f"[{tenant.name}] {event.title}"[:250]
    messages = []
    for address in addresses:
        message = EmailMultiAlternatives(
            subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address]
        )
        message.attach_alternative(html, "text/html")
        message.extra_headers["X-KPI-Event"] = event.event_type
        messages.append(message)
    return messages
