"""The GraphQL endpoint: sync view (transactions and RLS settings need it), typed context.

Every answer of /graphql/ is JSON shaped like a GraphQL response, refusals of the transport
included: `{"data": null, "errors": [{"message": ..., "extensions": {"code": ...}}]}` with
an HTTP status that says what went wrong (400 malformed, 401 no or bad credentials, 403
CSRF, 405 not POST, 413 too large, 415 neither JSON nor a multipart upload, 500 our fault).

A request is JSON, or `multipart/form-data` following the GraphQL multipart request spec
(an `operations` JSON field, a `map` JSON field, the files) for the mutations that take a
file (`importCrmFile`); sessions need the CSRF token either way.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cross_web import HTTPException
from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from strawberry.django.views import DjangoHTTPRequestAdapter, GraphQLView
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from backend.schema import schema
from tenants.errors import ErrorCode
from tenants.graphql.context import Context, context_from_request

logger = logging.getLogger("graphql.transport")

# JSON nested deeper than this is refused before GraphQL sees it (no input of ours needs
# more than a dozen levels; Python's own parser gives up near 1,000 with a RecursionError).
MAX_JSON_DEPTH = 64
MULTIPART = "multipart/form-data"
# Files one multipart request may carry: every mutation that takes a file takes one.
MAX_UPLOAD_FILES = 1
INTERNAL = "INTERNAL"
_CODE_BY_STATUS = {
    400: ErrorCode.VALIDATION,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.VALIDATION,
    413: ErrorCode.BATCH_TOO_LARGE,
    415: ErrorCode.VALIDATION,
}


def graphql_error_response(message: str, *, code: str, status: int) -> JsonResponse:
    """A GraphQL-shaped error body, so clients handle a refused request like any other."""
    return JsonResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": str(code)}}]},
        status=status,
    )


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests lists and objects more than `limit` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class _RequestAdapter(DjangoHTTPRequestAdapter):
    @property
    def body(self) -> str:
        try:
            return self.request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "The request body is not valid UTF-8.") from exc


class TenantGraphQLView(GraphQLView):
    request_adapter_class = _RequestAdapter

    def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        """GraphiQL from our static files (console/static/console/vendor/), not a CDN, so
        it also loads offline; strawberry's own page fetches React and GraphiQL from unpkg."""
        return HttpResponse(render_to_string("console/graphiql.html", request=request))

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        return context_from_request(request, response)

    def process_result(self, request: HttpRequest, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The result with a code on every error: errors in the document itself (syntax,
        token limit) reach the client without passing the masking extension."""
        response = super().process_result(request, result)
        for error in response.get("errors") or ():
            extensions = error.setdefault("extensions", {}) or {}
            extensions.setdefault("code", str(ErrorCode.VALIDATION))
            error["extensions"] = extensions
        return response

    def decode_json(self, data: str | bytes) -> object:
        """The request body as a JSON object, or a 400 that says what is wrong with it."""
        try:
            parsed = json.loads(data)
        except RecursionError as exc:
            raise HTTPException(400, "The request body is nested too deeply.") from exc
        except ValueError as exc:  # JSONDecodeError
            raise HTTPException(400, "The request body is not valid JSON.") from exc
        if isinstance(parsed, list):
            raise HTTPException(400, "Send one operation per request (batching is off).")
        if not isinstance(parsed, dict):
            raise HTTPException(
                400, 'The request body must be a JSON object: {"query": ..., "variables": ...}.'
            )
        if not isinstance(parsed.get("query"), str):
            raise HTTPException(400, "The request body needs a `query` string.")
        if not isinstance(parsed.get("operationName"), str | None):
            raise HTTPException(400, "`operationName` must be a string or null.")
        if _too_deep(parsed):
            raise HTTPException(400, "The request body is nested too deeply.")
        return parsed

    def parse_multipart(self, request: Any) -> dict[str, Any]:
        """The operations of a multipart request with its files in place, or a 400 saying
        which part of the GraphQL multipart request spec the request broke."""
        post, files = request.post_data, request.files
        if "operations" not in post or "map" not in post:
            raise HTTPException(
                400, "A multipart request needs an `operations` field and a `map` field."
            )
        operations = self.decode_json(post["operations"])
        try:
            files_map = json.loads(post["map"])
        except ValueError as exc:
            raise HTTPException(400, "The `map` field is not valid JSON.") from exc
        if not isinstance(files_map, dict) or not all(
            isinstance(paths, list) and all(isinstance(path, str) for path in paths)
            for paths in files_map.values()
        ):
            raise HTTPException(
                400, 'The `map` field must be a JSON object: {"0": ["variables.file"]}.'
            )
        unknown = sorted(set(files_map) - set(files))
        if unknown:
            raise HTTPException(400, f"File(s) missing in form data: {', '.join(unknown)[:80]}.")
        unmapped = sorted(set(files) - set(files_map))
        if unmapped:
            raise HTTPException(400, f"File(s) not in `map`: {', '.join(unmapped)[:80]}.")
        for paths in files_map.values():
            for path in paths:
                if not path.startswith("variables."):
                    raise HTTPException(400, "A `map` path must name a variable: variables.<name>.")
        try:
            return replace_placeholders_with_files(operations, files_map, files)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise HTTPException(
                400, "A `map` path does not point at a variable of `operations`."
            ) from exc

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return graphql_error_response(
                exc.reason,
                code=_CODE_BY_STATUS.get(exc.status_code, ErrorCode.VALIDATION),
                status=exc.status_code,
            )
        except RequestDataTooBig:
            return _too_large()
        except Exception:
            # Belt and braces: an error outside the GraphQL execution (which masks its own)
            # answers JSON, and the request's transaction is rolled back, not committed.
            logger.exception("Unexpected error in the GraphQL view")
            _roll_back()
            return graphql_error_response("Unexpected error.", code=INTERNAL, status=500)


def _roll_back() -> None:
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            connection.set_rollback(True)


def _too_large() -> JsonResponse:
    return graphql_error_response(
        f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
        "split the batch into smaller requests.",
        code=ErrorCode.BATCH_TOO_LARGE,
        status=413,
    )


_view = TenantGraphQLView.as_view(
    schema=schema,
    graphql_ide="graphiql" if settings.GRAPHIQL else None,
    # Queries over GET would be cacheable and loggable with their variables; POST only.
    allow_queries_via_get=False,
    # File uploads (GraphQL multipart request spec); the transport checks below admit them
    # only for POSTs of the right size, with CSRF for sessions like any other request.
    multipart_uploads_enabled=True,
)
_view_with_csrf = csrf_protect(_view)


def _wants_graphiql(request: HttpRequest) -> bool:
    return (
        settings.GRAPHIQL
        and request.method == "GET"
        and "text/html" in request.META.get("HTTP_ACCEPT", "")
    )


def _transport_refusal(request: HttpRequest) -> HttpResponse | None:
    """A JSON refusal of a request that is not a JSON POST of an acceptable size."""
    if request.method != "POST":
        response = graphql_error_response(
            "Send GraphQL requests as POST with a JSON body.",
            code=ErrorCode.VALIDATION,
            status=405,
        )
        response["Allow"] = "POST"
        return response
    content_type = request.content_type or ""
    if content_type not in ("application/json", MULTIPART):
        return graphql_error_response(
            "Send the request as 'Content-Type: application/json' (or multipart/form-data "
            "for a file upload, following the GraphQL multipart request spec).",
            code=ErrorCode.VALIDATION,
            status=415,
        )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if content_type == MULTIPART:
        return _upload_too_large(length)
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return _too_large()
    return None


def _upload_too_large(length: int) -> HttpResponse | None:
    # The file, plus the JSON fields around it.
    limit = settings.CRM_IMPORT_MAX_UPLOAD_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= limit:
        return None
    return graphql_error_response(
        f"The upload is over {limit} bytes; split the file.",
        code=ErrorCode.BATCH_TOO_LARGE,
        status=413,
    )


def _multipart_refusal(request: HttpRequest) -> HttpResponse | None:
    """A JSON refusal of a multipart body that cannot be parsed, or None (then parsed)."""
    if request.content_type != MULTIPART:
        return None
    if not request.content_params.get("boundary"):
        return _malformed("The multipart body has no boundary in its Content-Type.")
    # NOTE: parsed here, before CSRF and GraphQL read it, so a broken body is a typed 400.
    try:
        request.POST  # noqa: B018 (parses the body and FILES)
    except RequestDataTooBig:
        return _too_large()
    except (TooManyFilesSent, TooManyFieldsSent):
        return _malformed("The multipart body has too many fields or files.")
    except (MultiPartParserError, SuspiciousOperation, ValueError):
        return _malformed("The multipart body cannot be parsed.")
    if len(request.FILES) > MAX_UPLOAD_FILES:
        return _malformed(f"Send at most {MAX_UPLOAD_FILES} file per request.")
    return None


def _malformed(message: str) -> JsonResponse:
    return graphql_error_response(message, code=ErrorCode.VALIDATION, status=400)


@csrf_exempt
def graphql_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
    if _wants_graphiql(request):
        return _view(request, *args, **kwargs)
    refusal = _transport_refusal(request)
    if refusal is not None:
        return refusal
    # API tokens are not ambient credentials, so CSRF does not apply to them; browser
    # sessions (GraphiQL, dashboards on the same site) keep Django's CSRF check.
    has_token = bool(request.META.get("HTTP_AUTHORIZATION"))
    principal = getattr(request, "principal", None)
    if not has_token and (principal is None or not principal.is_authenticated):
        return graphql_error_response(
            "Sign in or send 'Authorization: Bearer <API token>'.",
            code=ErrorCode.UNAUTHENTICATED,
            status=401,
        )
    # NOTE: only now, so an anonymous caller never gets an upload parsed (a bad token was
    # refused by the middleware already).
    refusal = _multipart_refusal(request)
    if refusal is not None:
        return refusal
    if has_token:
        return _view(request, *args, **kwargs)
    return _view_with_csrf(request, *args, **kwargs)


# --- Error pages: JSON for the API, Django's own pages for the admin --------------------


def _is_api(request: HttpRequest) -> bool:
    # The admin and the console's pages (/app/) are HTML; everything else is the API.
    return not request.path.startswith(("/admin/", "/app/"))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a JSON 403 for the API, Django's page for the admin."""
    if _is_api(request):
        return graphql_error_response(
            "CSRF check failed: a signed-in browser sends the csrftoken cookie's value in "
            "the X-CSRFToken header (API tokens need no CSRF token).",
            code=ErrorCode.PERMISSION_DENIED,
            status=403,
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _too_large()
    return graphql_error_response("Bad request.", code=ErrorCode.VALIDATION, status=400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return permission_denied(request, exception)
    return graphql_error_response(
        "Permission denied.", code=ErrorCode.PERMISSION_DENIED, status=403
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return page_not_found(request, exception)
    return graphql_error_response(
        "Not found: the API is POST /graphql/.", code=ErrorCode.NOT_FOUND, status=404
    )


def handler500(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return server_error(request)
    return graphql_error_response("Unexpected error.", code=INTERNAL, status=500)
