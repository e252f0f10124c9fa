"""URL routes: GraphQL, Django admin, the web console and workspace switching."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from backend.ops.health import liveness_view, readiness_view
from backend.views import graphql_view
from tenants.views import switch_tenant

admin.site.site_header = "Inside-Sales KPI platform"

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    # Without the slash too: APPEND_SLASH cannot redirect a POST without losing its body.
    path("graphql", graphql_view),
    path("tenant/switch/", switch_tenant, name="switch-tenant"),
    path("admin/", admin.site.urls),
    # Probes (answered first by backend.ops.health.ProbeMiddleware; routed here too).
    path("healthz", liveness_view, name="healthz"),
    path("readyz", readiness_view, name="readyz"),
    # The web console (templates and static files; its data comes from /graphql/).
    path("app/", include("console.urls")),
    path("", RedirectView.as_view(pattern_name="console:app", permanent=False), name="home"),
]

# JSON error pages for the API, Django's own for the admin (backend/views.py).
handler400 = "backend.views.handler400"
handler403 = "backend.views.handler403"
handler404 = "backend.views.handler404"
handler500 = "backend.views.handler500"
