"""The browser tests' live server: one request at a time on SQLite.

TRICKY: on SQLite the live server's threads share the test database's one in-memory
connection (Django shares it so that they see the test's rows). Two requests at once then
break each other's transactions ("cannot start a transaction within a transaction", "no such
savepoint"), answered "Unexpected error.", and the connection stays broken for the requests
after them: a page showed "Could not load: Unexpected error." when the report it opened was
asked for while the reports list still loaded. The console sends one request at a time
(console/static/console/js/api.js), and so does the test through it; the server also serves
one at a time, so that nothing else (a static file beside a query) can overlap. PostgreSQL
gives each thread its own connection: its server stays threaded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread


class OneAtATimeServer(WSGIServer):
    """Django's live server, not threaded (each connection is closed after its request)."""

    def __init__(self, *args: Any, connections_override: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # NOTE: requests run on the server's own thread, which already uses these.
        self.connections_override = connections_override


if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    LiveServerThread.server_class = OneAtATimeServer
