"""API token secrets: generation, parsing and constant-time verification."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings

KEY_ID_BYTES = 6  # 12 hex characters, public
SECRET_BYTES = 32  # 256 bits, never stored


@dataclass(frozen=True)
class TokenParts:
    key_id: str
    secret: str


def hash_secret(secret: str) -> str:
    # A fast hash is right here: the secret is 256 random bits, not a guessable password.
    return hashlib.sha256(secret.encode()).hexdigest()


def generate() -> tuple[str, TokenParts]:
    """A new token string `kpi_<key id>_<secret>` and its parts."""
    parts = TokenParts(
        key_id=secrets.token_hex(KEY_ID_BYTES), secret=secrets.token_urlsafe(SECRET_BYTES)
    )
    return f"{settings.API_TOKEN_PREFIX}_{parts.key_id}_{parts.secret}", parts


def parse(raw: str) -> TokenParts | None:
    prefix, sep, rest = raw.partition("_")
    if not sep or prefix != settings.API_TOKEN_PREFIX:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or len(key_id) != 2 * KEY_ID_BYTES or not secret:
        return None
    return TokenParts(key_id=key_id, secret=secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
