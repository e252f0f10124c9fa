"""The Django admin in the request tenant's language and time zone (Tenant.language, .timezone)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone, translation


class AdminLocaleMiddleware:
    """Activates the tenant's language and time zone for admin pages (after TenantMiddleware).

    Labels come through Django's i18n (its own Japanese admin catalog plus ours in locale/);
    aware datetimes are shown in the tenant's zone. Outside /admin/ nothing changes: the API
    speaks English error messages and ISO times with offsets whatever the tenant.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.prefix is None:
            self.prefix = reverse("admin:index")
        tenant = getattr(request, "tenant", None)
        if tenant is None or not request.path.startswith(self.prefix):
            return self.get_response(request)
        # NOTE: the admin's TemplateResponse renders inside get_response, so within these.
        with translation.override(tenant.language), timezone.override(tenant.timezone):
            request.LANGUAGE_CODE = translation.get_language()  # type: ignore[attr-defined]
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", tenant.language)
        return response
