"""Per-token request limits: counting, 429 with Retry-After, headers, windows, isolation."""

from __future__ import annotations

import logging
import random
import threading

import pytest
from django.conf import settings
from django.test import override_settings

from tenants import rate_limits, services
from tenants.context import tenant_context
from tenants.models import Team
from tenants.rate_limits import LimitKind, rate_limit_consume, rate_limit_refund

ME = "{ me { tokenName } }"


def make_token(tenant, name="partner", **limits):
    token, secret = services.api_token_create(
        tenant=tenant, name=name, scopes=["records:write", "kpis:read"], **limits
    )
    return token, secret


def test_the_request_after_the_limit_is_refused_with_429_retry_after_and_a_typed_body(
    post, clock, tenant_a
):
    # given a token that may make 3 requests a minute
    _, secret = make_token(tenant_a, requests_per_minute=3)
    # when it makes 4 at the start of a minute
    responses = [post(ME, token=secret) for _ in range(4)]
    # then the first 3 pass and say what is left
    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert [r["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert {r["X-RateLimit-Limit"] for r in responses[:3]} == {"3"}
    assert {r["X-RateLimit-Reset"] for r in responses[:3]} == {"120"}
    assert responses[0].json() == {"data": {"me": {"tokenName": "partner"}}}
    # and the 4th is refused: 3 * (1 - t/60) + 1 <= 3 holds 20 s into the next minute
    refused = responses[3]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "80"
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused.json() == {
        "data": None,
        "errors": [
            {
                "message": "This API token may send 3 requests per minute; retry in 80 seconds.",
                "extensions": {
                    "code": "RATE_LIMITED",
                    "retryAfter": 80,
                    "limit": 3,
                    "window": "minute",
                    "kind": "requests",
                },
            }
        ],
    }


def test_refused_requests_cost_nothing_and_retry_after_is_exact(post, clock, tenant_a):
    # given a token at its limit of 3
    _, secret = make_token(tenant_a, requests_per_minute=3)
    for _ in range(3):
        post(ME, token=secret)
    # when it keeps knocking until one second before Retry-After
    for _ in range(5):
        assert post(ME, token=secret).status_code == 429
    clock.advance(79)
    early = post(ME, token=secret)
    clock.advance(1)
    on_time = post(ME, token=secret)
    # then the refused requests did not push the time back
    assert early.status_code == 429
    assert early["Retry-After"] == "1"
    assert on_time.status_code == 200
    assert on_time["X-RateLimit-Remaining"] == "0"


def test_the_whole_budget_is_back_two_minutes_after_the_last_request(post, clock, tenant_a):
    # given a token that used its 3 requests
    _, secret = make_token(tenant_a, requests_per_minute=3)
    for _ in range(3):
        post(ME, token=secret)
    # when X-RateLimit-Reset seconds have passed
    clock.advance(120)
    responses = [post(ME, token=secret) for _ in range(4)]
    # then all 3 are available again, and no more
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]


def test_the_previous_minute_weighs_by_the_part_still_inside_the_last_60_seconds(clock, tenant_a):
    # given 60 requests in the previous minute (limit 100)
    token, _ = make_token(tenant_a, requests_per_minute=100)
    for _ in range(60):
        assert rate_limit_consume(token=token, kind=LimitKind.REQUESTS).allowed
    # when it is 45 s into the next minute: 60 * 15/60 = 15 still count
    clock.advance(105)
    decision = rate_limit_consume(token=token, kind=LimitKind.REQUESTS)
    # then 100 - 15 - 1 remain
    assert decision.allowed
    assert decision.remaining == 84


def test_a_token_without_own_limits_follows_the_settings_and_its_own_override_wins(
    post, clock, tenant_a
):
    # given a default of 2 requests a minute, one token with none of its own, one with 5
    _, default_secret = make_token(tenant_a, name="default")
    _, own_secret = make_token(tenant_a, name="own", requests_per_minute=5)
    with override_settings(API_TOKEN_RATE_REQUESTS_PER_MINUTE=2):
        # when each makes 6 requests
        default_codes = [post(ME, token=default_secret).status_code for _ in range(6)]
        own_codes = [post(ME, token=own_secret).status_code for _ in range(6)]
    # then each is refused after its own limit
    assert default_codes == [200, 200, 429, 429, 429, 429]
    assert own_codes == [200, 200, 200, 200, 200, 429]


def test_two_tokens_of_a_tenant_and_another_tenants_token_have_their_own_budgets(
    post, clock, tenant_a, tenant_b
):
    # given two tokens of A and one of B, each with a limit of 2, and A's first one spent
    _, a1 = make_token(tenant_a, name="a1", requests_per_minute=2)
    _, a2 = make_token(tenant_a, name="a2", requests_per_minute=2)
    _, b1 = make_token(tenant_b, name="b1", requests_per_minute=2)
    post(ME, token=a1)
    post(ME, token=a1)
    assert post(ME, token=a1).status_code == 429
    # when the others make requests
    a2_first = post(ME, token=a2)
    b1_first = post(ME, token=b1)
    # then each sees its own full budget: nothing of a1's is spent or visible
    assert (a2_first.status_code, a2_first["X-RateLimit-Remaining"]) == (200, "1")
    assert (b1_first.status_code, b1_first["X-RateLimit-Remaining"]) == (200, "1")
    assert b1_first.json() == {"data": {"me": {"tokenName": "b1"}}}
    # and B spending its budget leaves A's second token alone
    post(ME, token=b1)
    assert post(ME, token=b1).status_code == 429
    assert post(ME, token=a2).status_code == 200


def test_signed_in_users_are_not_limited_by_token_limits(graphql, clock, tenant_a, admin_a):
    # given a default of 1 request a minute
    with override_settings(API_TOKEN_RATE_REQUESTS_PER_MINUTE=1):
        # when a signed-in admin makes 3 requests
        statuses = [graphql(ME, user=admin_a, tenant="acme")[0] for _ in range(3)]
    # then none is limited
    assert statuses == [200, 200, 200]


def test_a_limit_changed_later_applies_from_the_next_request(post, clock, tenant_a):
    # given a token with 1 request a minute that has used it
    token, secret = make_token(tenant_a, requests_per_minute=1)
    post(ME, token=secret)
    assert post(ME, token=secret).status_code == 429
    # when an admin raises its limit
    services.api_token_update(tenant=tenant_a, token_id=token.pk, requests_per_minute=3)
    # then the next request is counted against 3
    response = post(ME, token=secret)
    assert (response.status_code, response["X-RateLimit-Limit"]) == (200, "3")
    assert response["X-RateLimit-Remaining"] == "1"


def test_an_unreachable_store_lets_requests_through_and_warns_once(post, clock, tenant_a, caplog):
    # given a token with 1 request a minute and a Redis cache nobody listens on
    _, secret = make_token(tenant_a, requests_per_minute=1)
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=dead_redis), caplog.at_level(logging.WARNING):
        # when it makes 3 requests
        responses = [post(ME, token=secret) for _ in range(3)]
    # then all are served, without rate-limit headers, and one warning is logged
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all("X-RateLimit-Limit" not in r for r in responses)
    warnings = [r for r in caplog.records if r.name == "tenants.rate_limits"]
    assert [r.getMessage() for r in warnings] == [
        "Rate-limit store unreachable: API tokens are not rate limited until it is back."
    ]


def test_the_configured_cache_picks_the_store(tenant_a):
    # given the cache of this run (Redis on the PostgreSQL + Redis run, locmem otherwise)
    from django.core.cache import caches

    store = rate_limits._store_for(caches["default"])
    # then Redis is counted by the Lua script, anything else under the process lock
    expect_redis = settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    assert isinstance(store, rate_limits._RedisStore) is expect_redis


def test_concurrent_requests_never_pass_more_than_the_limit(clock, tenant_a):
    # given a token with 25 requests a minute
    token, _ = make_token(tenant_a, requests_per_minute=25)
    allowed: list[bool] = []

    def knock() -> None:
        for _ in range(10):
            allowed.append(rate_limit_consume(token=token, kind=LimitKind.REQUESTS).allowed)

    # when 8 threads make 80 requests at once
    threads = [threading.Thread(target=knock) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly 25 pass
    assert (allowed.count(True), allowed.count(False)) == (25, 55)


def test_a_refund_gives_back_exactly_what_was_taken(clock, tenant_a):
    # given a token with 10 rows a minute that took 7
    token, _ = make_token(tenant_a, rows_per_minute=10)
    taken = rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=7)
    assert not rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=4).allowed
    # when the 7 are given back
    rate_limit_refund(charge=taken.charge)
    # then 10 fit again
    assert rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=10).remaining == 0


def test_a_cost_above_the_limit_is_a_programming_error(tenant_a):
    token, _ = make_token(tenant_a, rows_per_minute=10)
    with pytest.raises(ValueError, match=r"^A cost of 11 can never fit a limit of 10\.$"):
        rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=11)


@pytest.mark.parametrize("seed", range(6))
def test_retry_after_is_the_first_whole_second_at_which_the_cost_fits(clock, tenant_a, seed):
    # given a token filled at random moments until a cost is refused
    rng = random.Random(seed)
    limit = rng.randint(5, 500)
    token, _ = make_token(tenant_a, rows_per_minute=limit)
    clock.advance(rng.randint(0, 59_999) / 1000)
    while True:
        cost = rng.randint(1, limit)
        refused = rate_limit_consume(token=token, kind=LimitKind.ROWS, cost=cost)
        if not refused.allowed:
            break
        clock.advance(rng.randint(0, 20_000) / 1000)
    # when the caller waits Retry-After seconds, or one second less
    at = clock.now
    one_second_early = rate_limit_consume(
        token=token, kind=LimitKind.ROWS, cost=cost, now=at + refused.retry_after - 1
    )
    on_time = rate_limit_consume(
        token=token, kind=LimitKind.ROWS, cost=cost, now=at + refused.retry_after
    )
    # then it fits on time and not a second earlier
    assert refused.retry_after >= 1
    assert (one_second_early.allowed, on_time.allowed) == (False, True)


def test_a_refused_request_never_reaches_the_view(post, clock, tenant_a):
    # given a token with 1 request a minute that has used it
    _, secret = services.api_token_create(
        tenant=tenant_a, name="ops", scopes=["config:write"], requests_per_minute=1
    )
    post(ME, token=secret)
    # when it sends a mutation
    response = post(
        'mutation { createTeam(input: {name: "Osaka"}) { errors { code } } }', token=secret
    )
    # then it is refused and nothing is created
    assert response.status_code == 429
    assert response.json()["data"] is None
    with tenant_context(tenant_a):
        assert Team.objects.count() == 0
