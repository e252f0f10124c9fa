"""Event types: a registry the publishing apps extend, and the message each renders.

notifications knows no app above it: an app registers its event types (in its
AppConfig.ready) with a renderer that turns an event's payload into a message in the
tenant's language; notifications then delivers that message in-app, by e-mail and to
webhooks (with the payload itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    WEBHOOK = "webhook"


class EventType(StrEnum):
    """The event types known today (alerts registers their renderers); report.ready
    (reports) and handoff.* are registered by their apps as plain keys of the same
    registry."""

    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"


@dataclass(frozen=True)
class Message:
    """An event told to people: a title and lines of text, in one language."""

    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


Renderer = Callable[[dict[str, Any], str], Message]


@dataclass(frozen=True)
class EventTypeSpec:
    key: str
    label_en: str
    label_ja: str
    render: Renderer
    # The e-mail's closing line per language ("how to stop receiving this"); {tenant} is the
    # workspace's name. None: the alert wording.
    email_footer: dict[str, str] | None = None


_registry: dict[str, EventTypeSpec] = {}


def register_event_type(spec: EventTypeSpec) -> EventTypeSpec:
    """Make an event type publishable and subscribable (idempotent per key)."""
    _registry[spec.key] = spec
    return spec


def event_type_spec(key: str) -> EventTypeSpec | None:
    return _registry.get(key)


def event_types() -> list[EventTypeSpec]:
    """The registered event types, by key."""
    return [_registry[key] for key in sorted(_registry)]
