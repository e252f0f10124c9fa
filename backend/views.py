"""The GraphQL endpoint: sync view (transactions and RLS settings need it), typed context."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from strawberry.django.views import GraphQLView

from backend.schema import schema
from tenants.graphql.context import Context, context_from_request


class TenantGraphQLView(GraphQLView):
    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        return context_from_request(request, response)


_view = TenantGraphQLView.as_view(
    schema=schema,
    graphql_ide="graphiql" if settings.GRAPHIQL else None,
    # Queries over GET would be cacheable and loggable with their variables; POST only.
    allow_queries_via_get=False,
)
_view_with_csrf = csrf_protect(_view)


@csrf_exempt
def graphql_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    # API tokens are not ambient credentials, so CSRF does not apply to them; browser
    # sessions (GraphiQL, dashboards on the same site) keep Django's CSRF check.
    if request.META.get("HTTP_AUTHORIZATION"):
        return _view(request, *args, **kwargs)
    return _view_with_csrf(request, *args, **kwargs)
