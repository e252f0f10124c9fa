"""E-mails of events: text and HTML from per-language templates (ja / en)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from notifications.models import Event
from tenants.models import Tenant

LANGUAGES = ("ja", "en")


def event_email_messages(
    *, tenant: Tenant, event: Event, addresses: list[str]
) -> list[EmailMultiAlternatives]:
    """One message per address (recipients never see each other), in the event's language."""
    language = event.language if event.language in LANGUAGES else "en"
    context = {
        "tenant": tenant,
        "title": event.title,
        "lines": event.text.splitlines(),
        "event_type": event.event_type,
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
