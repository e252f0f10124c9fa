"""One signed webhook request: body, HMAC-SHA256 signature headers, and a POST with hard
timeouts to the address that passed the target check (no redirects followed)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from notifications.targets import Target

USER_AGENT = "kpi-platform-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 over "{timestamp}.{body}" with the endpoint's secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    *, secret: str, timestamp: int, body: bytes, event_type: str, delivery_id: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-KPI-Event": event_type,
        "X-KPI-Delivery": str(delivery_id),
        "X-KPI-Signature": f"t={timestamp},v1={signature(secret, timestamp, body)}",
    }


@dataclass(frozen=True)
class Response:
    status: int | None
    error: str
    elapsed_ms: int


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, address: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, address: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    total_timeout: float,
) -> Response:
    """POST once; a status (any) or the error, and the time taken. Never raises for
    network trouble; 2xx is success for the caller to decide."""
    began = time.monotonic()
    deadline = began + total_timeout

    def elapsed() -> int:
        return int((time.monotonic() - began) * 1000)

    address = target.addresses[0]
    if target.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPS(
            address,
            target.host,
            target.port,
            timeout=connect_timeout,
            context=ssl.create_default_context(),
        )
    else:
        connection = _PinnedHTTP(address, target.host, target.port, timeout=connect_timeout)
    try:
        connection.connect()
        # NOTE: kept here: http.client drops its reference once a response says "close".
        sock = connection.sock
        assert sock is not None
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        read = 0
        # TRICKY: a socket timeout bounds each read, not the whole; a server dribbling a
        # byte at a time must still end at the deadline.
        while read < MAX_RESPONSE_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("total timeout")
            sock.settimeout(remaining)
            chunk = response.read1(8192) if hasattr(response, "read1") else response.read(8192)
            if not chunk:
                break
            read += len(chunk)
        return Response(status=response.status, error="", elapsed_ms=elapsed())
    except (OSError, http.client.HTTPException, ssl.SSLError, TimeoutError) as exc:
        message = f"{type(exc).__name__}: {exc}".strip()
        return Response(status=None, error=message[:500], elapsed_ms=elapsed())
    finally:
        connection.close()
