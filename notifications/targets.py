"""Webhook targets: http(s) URLs whose host resolves to public addresses only (no SSRF).

Checked when an endpoint is saved and again before every request (the name may resolve
elsewhere by then: DNS rebinding); the request then connects to the address checked, not
to a fresh resolution. WEBHOOK_ALLOW_PRIVATE_TARGETS lifts the address check (tests, a
private network on purpose), never the scheme check.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tenants.errors import ValidationFailed

# Beyond what ipaddress flags as private/loopback/link-local/reserved: named so the refusal
# is explicit (cloud metadata lives in 169.254/16 and fd00:ec2::/32).
_REFUSED_NETWORKS = [
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",
        "::/128",
        "fc00::/7",
        "fe80::/10",
    )
]


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    addresses: tuple[str, ...]


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in net for net in _REFUSED_NETWORKS if net.version == address.version)
    )


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationFailed(f"The host {host!r} does not resolve.", field="url") from exc
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def webhook_target_check(url: str) -> Target:
    """The URL's parts and the addresses to connect to; ValidationFailed(field="url") when
    it is not http(s) or (unless allowed) any address it resolves to is not public."""
    if not isinstance(url, str) or len(url) > 2000 or any(ord(c) < 33 for c in url):
        raise ValidationFailed("A URL of at most 2000 characters, no spaces.", field="url")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationFailed("Only http:// and https:// URLs can receive webhooks.", field="url")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationFailed("The URL's port is not valid.", field="url") from exc
    if not host:
        raise ValidationFailed("The URL has no host.", field="url")
    if parts.username or parts.password:
        raise ValidationFailed(
            "Put no credentials in the URL; the signature authenticates.", field="url"
        )
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for text in addresses:
            if _refused(ipaddress.ip_address(text.split("%")[0])):
                raise ValidationFailed(
                    "The URL points at a private, loopback, link-local or metadata address.",
                    field="url",
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)
