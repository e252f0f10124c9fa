"""URL routes: GraphQL, Django admin, and workspace switching for signed-in users."""

from django.contrib import admin
from django.urls import path

from backend.views import graphql_view
from tenants.views import switch_tenant

admin.site.site_header = "Inside-Sales KPI platform"

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("tenant/switch/", switch_tenant, name="switch-tenant"),
    path("admin/", admin.site.urls),
]
