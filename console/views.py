"""Page shells of the console: sign-in, sign-out and the dashboard page; no data access.

Everything the console shows is fetched by the browser from the public GraphQL API
(/graphql/) with the member's session; these views only serve HTML that loads static files.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@login_required
@ensure_csrf_cookie
def app_shell(request: HttpRequest) -> HttpResponse:
    """The dashboard page; its data comes from /graphql/ (console/static/console/js/)."""
    return render(request, "console/app.html")


class ConsoleLoginView(auth_views.LoginView):
    """Django's session login with the console's template; a signed-in member goes on."""

    template_name = "console/login.html"
    redirect_authenticated_user = True


class ConsoleLogoutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires) and back to the login page."""

    next_page = "console:login"
