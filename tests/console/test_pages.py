"""The console's pages and GraphiQL: routes, sign-in, and assets served from our static files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client, RequestFactory

from backend.schema import schema
from backend.views import TenantGraphQLView

VENDORED = {
    "react-18.2.0": ["react.production.min.js"],
    "react-dom-18.2.0": ["react-dom.production.min.js"],
    "graphiql-3.8.3": ["graphiql.min.js", "graphiql.min.css"],
}


@pytest.mark.django_db
def test_root_leads_to_the_console(client: Client) -> None:
    # when / then
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/app/"


@pytest.mark.django_db
def test_console_needs_a_signed_in_member(client: Client) -> None:
    # when an anonymous visitor opens the console
    response = client.get("/app/")
    # then they are sent to the console's login page, and that page renders
    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/"
    login = client.get("/app/login/")
    assert login.status_code == 200
    assert b'name="username"' in login.content and b'href="/graphql/"' in login.content


@pytest.mark.django_db
def test_member_gets_the_page_shell_with_a_csrf_token(client: Client, admin_a: Any) -> None:
    # given a signed-in member
    client.force_login(admin_a)
    # when
    response = client.get("/app/")
    # then the shell loads the console's module and carries the token for /graphql/
    assert response.status_code == 200
    body = response.content.decode()
    assert re.search(r'<meta name="csrf-token" content="[A-Za-z0-9]{32,}">', body)
    assert 'src="/static/console/js/app.js"' in body
    assert "csrftoken" in response.cookies


@pytest.mark.django_db
def test_login_form_signs_in_and_logout_signs_out(client: Client, admin_a: Any) -> None:
    # given a member with a password
    admin_a.set_password("pw-console-2026")
    admin_a.save()
    # when they sign in through the console's form
    response = client.post("/app/login/", {"username": "alice", "password": "pw-console-2026"})
    # then they land on the console, and signing out (POST) ends the session
    assert response.status_code == 302 and response["Location"] == "/app/"
    assert client.get("/app/").status_code == 200
    assert client.post("/app/logout/").status_code == 302
    assert client.get("/app/").status_code == 302


@pytest.mark.django_db
def test_wrong_password_is_refused_on_the_page(client: Client, admin_a: Any) -> None:
    # when
    response = client.post("/app/login/", {"username": "alice", "password": "nope"})
    # then the form is shown again with the error, and nobody is signed in
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert client.get("/app/").status_code == 302


@pytest.mark.django_db
def test_graphiql_loads_its_assets_from_our_static_files(client: Client, admin_a: Any) -> None:
    # given GraphiQL turned on (GRAPHIQL is read when the view is built) and a member
    client.force_login(admin_a)
    view = TenantGraphQLView.as_view(schema=schema, graphql_ide="graphiql")
    request = RequestFactory().get("/graphql/", HTTP_ACCEPT="text/html")
    request.user = admin_a
    # when a browser opens /graphql/
    response = view(request)
    # then no asset comes from a CDN: every script and stylesheet is one of ours
    body = response.content.decode()
    assert response.status_code == 200
    assert "unpkg.com" not in body and "cdn" not in body.lower()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', body)
    assert sorted(assets) == sorted(
        f"/static/console/vendor/{package}/{name}"
        for package, names in VENDORED.items()
        for name in names
    )


def test_vendored_assets_ship_with_their_licence_and_no_missing_source_maps() -> None:
    for package, names in VENDORED.items():
        for name in [*names, "LICENSE"]:
            # when
            found = finders.find(f"console/vendor/{package}/{name}")
            # then the file is there, a licence is MIT, and no file points at an absent map
            assert found, f"{package}/{name} is missing"
            text = Path(found).read_text(encoding="utf-8")
            if name == "LICENSE":
                assert text.startswith("MIT License")
            else:
                assert "sourceMappingURL" not in text


def test_console_static_files_are_found_by_staticfiles() -> None:
    # then: runserver (DEBUG) and collectstatic both find the console's own files
    for name in ["app.js", "api.js", "i18n.js", "periods.js", "format.js", "charts.js", "login.js"]:
        assert finders.find(f"console/js/{name}"), name
    assert finders.find("console/css/console.css")
    assert "console" in settings.INSTALLED_APPS
