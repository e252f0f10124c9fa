"""Per-token rate limits: requests and ingested rows per minute, counted in the shared cache.

Each token has two budgets, `requests` (every request it authenticates) and `rows` (the rows
of its ingestion batches), with its own limit or the settings' default. A budget is a sliding
one-minute window approximated by two fixed windows (as Cloudflare counts): the count of the
current minute plus the count of the previous minute weighted by the part of it that still
lies in the last 60 seconds. A request or batch that would go over is refused whole and costs
nothing; the refusal says when the same cost will fit again (`Retry-After`).

With a Redis cache the check and the increment are one Lua script (atomic across every web
process); with any other cache backend (locmem in the zero-setup demo) a process lock makes
them atomic within the process, which is the only one counting. If the store cannot be
reached the request is allowed (fail open) and a warning is logged once per outage: a
limiter must never take the API down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from tenants.errors import ErrorCode, PublicError

if TYPE_CHECKING:
    from django.http import HttpResponse

    from tenants.models import ApiToken
    from tenants.principal import Principal

logger = logging.getLogger("tenants.rate_limits")

WINDOW_SECONDS = 60
_WINDOW_MS = WINDOW_SECONDS * 1000
CACHE_ALIAS = "default"

# Seconds since the epoch; tests replace it with a fake clock (never sleep).
clock: Callable[[], float] = time.time


class LimitKind(StrEnum):
    REQUESTS = "requests"
    ROWS = "rows"


# Response headers per budget: the requests budget on every token response, the rows budget
# on ingestion responses.
HEADER_PREFIX = {LimitKind.REQUESTS: "X-RateLimit", LimitKind.ROWS: "X-RateLimit-Rows"}


def token_limit(token: ApiToken, kind: LimitKind) -> int:
    """The token's own limit per minute, or the default from settings."""
    if kind == LimitKind.REQUESTS:
        own, default = token.requests_per_minute, settings.API_TOKEN_RATE_REQUESTS_PER_MINUTE
    else:
        own, default = token.rows_per_minute, settings.API_TOKEN_RATE_ROWS_PER_MINUTE
    return own if own is not None else default


class RateLimited(PublicError):
    """Over a token's limit: HTTP 429 with Retry-After; `extensions` go into the error body."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, *, kind: LimitKind, limit: int, retry_after: int):
        unit = "requests" if kind == LimitKind.REQUESTS else "rows"
        super().__init__(
            f"This API token may send {limit} {unit} per minute; "
            f"retry in {retry_after} second{'s' if retry_after != 1 else ''}."
        )
        self.kind = kind
        self.limit = limit
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, Any]:
        return {
            "retryAfter": self.retry_after,
            "limit": self.limit,
            "window": "minute",
            "kind": str(self.kind),
        }


@dataclass(frozen=True)
class Charge:
    """What one allowed request or batch added to a window, so it can be given back."""

    key: str
    cost: int


@dataclass(frozen=True)
class Decision:
    kind: LimitKind
    limit: int
    allowed: bool
    remaining: int = 0
    reset_seconds: int = 0
    retry_after: int = 0
    charge: Charge | None = None
    # False when the store could not be reached: allowed, with no headers to tell.
    counted: bool = True

    def headers(self) -> dict[str, str]:
        """X-RateLimit-Limit / -Remaining / -Reset (X-RateLimit-Rows-* for rows), and
        Retry-After when refused."""
        if not self.counted:
            return {}
        prefix = HEADER_PREFIX[self.kind]
        headers = {
            f"{prefix}-Limit": str(self.limit),
            f"{prefix}-Remaining": str(self.remaining),
            f"{prefix}-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def error(self) -> RateLimited:
        return RateLimited(kind=self.kind, limit=self.limit, retry_after=self.retry_after)


def rate_limit_consume(
    *, token: ApiToken, kind: LimitKind, cost: int = 1, now: float | None = None
) -> Decision:
    """Take `cost` from the token's budget if it fits in the last minute; else take nothing.

    `cost` must be between 1 and the limit (a larger one could never fit: the caller refuses
    it otherwise).
    """
    limit = token_limit(token, kind)
    if not 0 < cost <= limit:
        raise ValueError(f"A cost of {cost} can never fit a limit of {limit}.")
    now_ms = round((clock() if now is None else now) * 1000)
    window, elapsed_ms = divmod(now_ms, _WINDOW_MS)
    # NOTE: keyed by the token's random public key id, not its primary key: ids are reused
    # across test databases and restores, key ids never.
    base = f"ratelimit:{token.key_id}:{kind}"
    cache = caches[CACHE_ALIAS]
    previous_key = cache.make_key(f"{base}:{window - 1}")
    current_key = cache.make_key(f"{base}:{window}")
    try:
        previous, current, allowed = _store_for(cache).consume(
            previous_key, current_key, cost, limit, elapsed_ms
        )
    except Exception:  # NOTE: fail open on any store failure (module docstring)
        _store_failed()
        return Decision(kind=kind, limit=limit, allowed=True, counted=False)
    _store_recovered()
    used_after = current + (cost if allowed else 0)
    return Decision(
        kind=kind,
        limit=limit,
        allowed=allowed,
        remaining=_remaining(previous, used_after, limit, elapsed_ms),
        reset_seconds=_reset_seconds(previous, used_after, elapsed_ms),
        retry_after=0 if allowed else _retry_after(previous, current, cost, limit, elapsed_ms),
        charge=Charge(key=current_key, cost=cost) if allowed else None,
    )


def rate_limit_refund(*, charge: Charge) -> None:
    """Give back what an allowed batch took when it stored nothing (refused, replayed)."""
    cache = caches[CACHE_ALIAS]
    try:
        _store_for(cache).refund(charge.key, charge.cost)
    except Exception:  # NOTE: fail open, as in rate_limit_consume
        _store_failed()


def fits(previous: int, current: int, cost: int, limit: int, elapsed_ms: int) -> bool:
    """Whether `cost` more fits: previous * (unexpired part of the last window) + current +
    cost <= limit, in integer milliseconds so that Lua and Python decide alike."""
    return previous * (_WINDOW_MS - elapsed_ms) + (current + cost) * _WINDOW_MS <= (
        limit * _WINDOW_MS
    )


def _remaining(previous: int, used: int, limit: int, elapsed_ms: int) -> int:
    spare = limit * _WINDOW_MS - previous * (_WINDOW_MS - elapsed_ms) - used * _WINDOW_MS
    return max(0, spare // _WINDOW_MS)


def _reset_seconds(previous: int, used: int, elapsed_ms: int) -> int:
    """Seconds until the whole budget is back: the current window's count fades out over
    the next window, the previous one's over this window."""
    if used:
        wait_ms = 2 * _WINDOW_MS - elapsed_ms
    elif previous:
        wait_ms = _WINDOW_MS - elapsed_ms
    else:
        return 0
    return math.ceil(wait_ms / 1000)


def _retry_after(previous: int, current: int, cost: int, limit: int, elapsed_ms: int) -> int:
    """Whole seconds (≥ 1) until `cost` fits, if nothing else is spent meanwhile."""
    if current + cost <= limit:
        # It fits later in this window, once enough of the previous window's weight is gone:
        # previous * (W - t) <= (limit - current - cost) * W.
        fits_at = _WINDOW_MS - (limit - current - cost) * _WINDOW_MS // previous
        wait_ms = fits_at - elapsed_ms
    else:
        # Only in the next window, where this window's count is the fading previous one.
        fits_at = _WINDOW_MS - (limit - cost) * _WINDOW_MS // current
        wait_ms = _WINDOW_MS - elapsed_ms + fits_at
    return max(1, math.ceil(wait_ms / 1000))


# --- Stores -----------------------------------------------------------------------------

_CONSUME_LUA = """
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local cost, limit, elapsed, window = tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), tonumber(ARGV[4])
if previous * (window - elapsed) + (current + cost) * window <= limit * window then
    redis.call('INCRBY', KEYS[2], cost)
    redis.call('PEXPIRE', KEYS[2], 2 * window + 1000)
    return {previous, current, 1}
end
return {previous, current, 0}
"""

_REFUND_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > 0 then
    redis.call('DECRBY', KEYS[1], math.min(current, tonumber(ARGV[1])))
end
return 0
"""


class _RedisStore:
    """Atomic across processes: one Lua script per decision, on the cache's own pool."""

    def __init__(self, cache: RedisCache):
        self.client = cache._cache.get_client(write=True)

    def consume(
        self, previous_key: str, current_key: str, cost: int, limit: int, elapsed_ms: int
    ) -> tuple[int, int, bool]:
        script = self.client.register_script(_CONSUME_LUA)
        previous, current, allowed = script(
            keys=[previous_key, current_key], args=[cost, limit, elapsed_ms, _WINDOW_MS]
        )
        return int(previous), int(current), bool(allowed)

    def refund(self, key: str, cost: int) -> None:
        self.client.register_script(_REFUND_LUA)(keys=[key], args=[cost])


_local_lock = threading.Lock()


class _CacheStore:
    """Any other cache backend (locmem): atomic within this process, the only one counting."""

    def __init__(self, cache: Any):
        self.cache = cache

    def consume(
        self, previous_key: str, current_key: str, cost: int, limit: int, elapsed_ms: int
    ) -> tuple[int, int, bool]:
        with _local_lock:
            counts: Mapping[str, int] = self.cache.get_many([previous_key, current_key])
            previous = counts.get(previous_key, 0)
            current = counts.get(current_key, 0)
            allowed = fits(previous, current, cost, limit, elapsed_ms)
            if allowed:
                self.cache.set(current_key, current + cost, timeout=2 * WINDOW_SECONDS + 1)
        return previous, current, allowed

    def refund(self, key: str, cost: int) -> None:
        with _local_lock:
            current = self.cache.get(key, 0)
            if current > 0:
                self.cache.set(key, max(0, current - cost), timeout=2 * WINDOW_SECONDS + 1)


def _store_for(cache: Any) -> _RedisStore | _CacheStore:
    # NOTE: raw keys through the cache's key function, so KEY_PREFIX and cache.clear() apply.
    return _RedisStore(cache) if isinstance(cache, RedisCache) else _CacheStore(cache)


_outage = threading.Event()


def _store_failed() -> None:
    if not _outage.is_set():
        _outage.set()
        logger.warning(
            "Rate-limit store unreachable: API tokens are not rate limited until it is back.",
            exc_info=True,
        )


def _store_recovered() -> None:
    if _outage.is_set():
        _outage.clear()
        logger.warning("Rate-limit store reachable again: API tokens are rate limited.")


# --- Hooks for the middleware and the ingestion mutations ------------------------------


def request_admit(principal: Principal) -> Decision | None:
    """The requests decision for a token request; None for users and anonymous callers."""
    if principal.token is None:
        return None
    return rate_limit_consume(token=principal.token, kind=LimitKind.REQUESTS)


@contextmanager
def rows_charged(
    *, principal: Principal, rows: int, response: HttpResponse | None
) -> Iterator[Charge | None]:
    """Charge a batch's rows to the calling token for the block, or raise RateLimited.

    Sets the rows headers (and 429 with Retry-After when refused) on `response`. The rows
    are given back if the block raises (nothing stored) or calls `rate_limit_refund` (a
    replayed batch). Users' batches and empty or oversized ones (the service refuses those
    whole with BATCH_TOO_LARGE) are not counted.
    """
    token = principal.token
    if token is None or rows <= 0 or rows > settings.INGEST_MAX_BATCH_ROWS:
        yield None
        return
    limit = token_limit(token, LimitKind.ROWS)
    if rows > limit:
        # Waiting would never help: a typed "split it" rather than a 429 to retry forever.
        raise PublicError(
            f"This API token may send at most {limit} rows per minute; this batch has "
            f"{rows}. Send smaller batches.",
            code=ErrorCode.BATCH_TOO_LARGE,
        )
    decision = rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=rows)
    if response is not None:
        for name, value in decision.headers().items():
            response[name] = value
        if not decision.allowed:
            response.status_code = 429
    if not decision.allowed:
        raise decision.error()
    try:
        yield decision.charge
    except BaseException:
        if decision.charge is not None:
            rate_limit_refund(charge=decision.charge)
        raise
