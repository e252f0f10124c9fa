"""Webhook signing secrets: generated, sealed (encrypted and authenticated) at rest.

The secret must be recoverable to sign deliveries, so it cannot be hashed like an API
token. It is sealed with a key derived from WEBHOOK_SECRET_KEY (default: SECRET_KEY):
a keystream of HMAC-SHA256(key, nonce || counter) blocks XORed with the secret, and an
HMAC-SHA256 tag over nonce and ciphertext (encrypt-then-MAC), using only the standard
library. A database dump alone does not reveal it; the API never returns it after the
response that created or rotated it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

PREFIX = "whsec_"
_VERSION = "v1"


class SealBroken(ValueError):
    """A sealed secret that does not open with the current key (tampered or re-keyed)."""


def webhook_secret_generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _keys() -> tuple[bytes, bytes]:
    root = (getattr(settings, "WEBHOOK_SECRET_KEY", "") or settings.SECRET_KEY).encode()
    encrypt = hmac.new(root, b"notifications.webhook-secret.encrypt", hashlib.sha256).digest()
    mac = hmac.new(root, b"notifications.webhook-secret.mac", hashlib.sha256).digest()
    return encrypt, mac


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def seal(secret: str) -> str:
    encrypt, mac = _keys()
    nonce = secrets.token_bytes(16)
    plain = secret.encode()
    cipher = bytes(
        a ^ b for a, b in zip(plain, _keystream(encrypt, nonce, len(plain)), strict=True)
    )
    tag = hmac.new(mac, nonce + cipher, hashlib.sha256).digest()
    return _VERSION + ":" + base64.urlsafe_b64encode(nonce + tag + cipher).decode()


def unseal(sealed: str) -> str:
    version, _, data = sealed.partition(":")
    if version != _VERSION:
        raise SealBroken("Unknown seal version.")
    raw = base64.urlsafe_b64decode(data.encode())
    nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
    encrypt, mac = _keys()
    if not hmac.compare_digest(tag, hmac.new(mac, nonce + cipher, hashlib.sha256).digest()):
        raise SealBroken("The sealed secret does not open with this key.")
    return bytes(
        a ^ b for a, b in zip(cipher, _keystream(encrypt, nonce, len(cipher)), strict=True)
    ).decode()


def hint(secret: str) -> str:
    """What lists show to recognise a secret: its prefix and last four characters."""
    return f"{PREFIX}…{secret[-4:]}"
