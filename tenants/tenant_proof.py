"""The proof that binds a transaction's tenant setting to this application.

Row-level security reads the tenant from the transaction setting `app.tenant_id`, and any
role may set a custom setting. So the value carries an HMAC-SHA256 of the tenant id and the
session's backend pid, keyed with a secret the application holds (`DATABASE_RLS_KEY`, else
derived from `DJANGO_SECRET_KEY`) and the database keeps where only the schema owner can
read it (`app_private.rls_key`, written by `tenants.rls.sync` after every migrate). The
policies accept the tenant only when the proof checks out, so SQL injected into one
request cannot name another tenant: it has no way to compute that tenant's proof, and a
proof seen elsewhere (another session's statement) is bound to that session's pid.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

_BLOCK = 64  # SHA-256's block size: the HMAC key pads to it


def rls_key() -> bytes:
    """The 32-byte HMAC key: DATABASE_RLS_KEY when set, else derived from SECRET_KEY."""
    secret = settings.DATABASE_RLS_KEY or settings.SECRET_KEY
    return hmac.new(secret.encode(), b"kpi-platform row-level security", hashlib.sha256).digest()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys, so SQL computes HMAC-SHA256 with sha256() alone:
    sha256(opad || sha256(ipad || message)), without the pgcrypto extension."""
    padded = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


def tenant_setting_value(tenant_id: int | None, backend_pid: int) -> str:
    """The value of `app.tenant_id` that row-level security accepts for `tenant_id` in the
    session `backend_pid` ("" for no tenant)."""
    if tenant_id is None:
        return ""
    message = f"{tenant_id}:{backend_pid}".encode()
    return f"{tenant_id}.{hmac.new(rls_key(), message, hashlib.sha256).hexdigest()}"
