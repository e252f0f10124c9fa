"""Workspace switching for signed-in users (Django admin and browser sessions)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.auth import SESSION_TENANT_KEY, principal_for_user
from tenants.errors import ErrorCode, PublicError
from tenants.middleware import error_response


@require_POST
@login_required
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Remember the chosen workspace in the session, after checking membership."""
    slug = request.POST.get("slug", "").strip()
    try:
        if not slug:
            raise PublicError("Choose a workspace by its slug.", code=ErrorCode.TENANT_REQUIRED)
        principal_for_user(request.user, slug)
    except PublicError as error:
        return error_response(error)
    request.session[SESSION_TENANT_KEY] = slug
    target = request.POST.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return HttpResponseRedirect(target)
