"""Guessing tokens is slowed: past a threshold of refused tokens, an address gets 429 with
Retry-After, while tokens already seen valid from it keep working."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from support import RunningService

from configsvc.auth_throttle import AuthThrottle, ThrottleOptions, TooManyAttempts
from configsvc.settings import DEFAULT_AUTH_FAILURES_PER_MINUTE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_counts_failures_in_a_window() -> None:
    clock = Clock()
    throttle = AuthThrottle(ThrottleOptions(max_failures=3, window=60), clock)
    throttle.succeeded("10.0.0.1", "good")
    for _ in range(3):
        throttle.check("10.0.0.1", "guess")
        throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("10.0.0.1", "guess")
    assert refused.value.headers == {"Retry-After": "60"}
    throttle.check("10.0.0.1", "good")  # seen valid from there: still fine
    throttle.check("10.0.0.2", "guess")  # other addresses are not affected
    clock.now += 30
    with pytest.raises(TooManyAttempts) as later:
        throttle.check("10.0.0.1", "guess")
    assert later.value.headers == {"Retry-After": "30"}
    clock.now += 31
    throttle.check("10.0.0.1", "guess")  # the failures left the window


def test_addresses_followed_are_bounded() -> None:
    throttle = AuthThrottle(ThrottleOptions(max_failures=1, max_addresses=2), Clock())
    for address in ("a", "b", "c"):
        throttle.failed(address)
    throttle.check("a", "x")  # forgotten: the oldest of three
    with pytest.raises(TooManyAttempts):
        throttle.check("c", "x")


def test_guessing_tokens_over_http_gets_429(
    service_factory: Callable[..., RunningService],
) -> None:
    limit = DEFAULT_AUTH_FAILURES_PER_MINUTE
    service = service_factory(auth_failures_per_minute=limit)
    with service.client() as api:
        guess_and_check(service, api, limit)


def guess_and_check(service: RunningService, api: httpx.Client, limit: int) -> None:
    assert api.get("/v1/namespaces").status_code == 200  # the admin token, seen valid
    statuses = []
    for attempt in range(limit + 2):
        with service.client(token=f"cst.guess.{attempt:040d}") as guesser:
            statuses.append(guesser.get("/v1/namespaces").status_code)
    assert statuses[:limit] == [401] * limit
    assert statuses[limit:] == [429, 429]
    with service.client(token="cst.guess.x") as guesser:
        throttled = guesser.get("/v1/configs/prod")
    assert throttled.json()["error"]["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) >= 1
    with service.client(token="cst.guess.x") as guesser:
        stream = guesser.get("/v1/watch", params={"namespace": "prod"})
    assert stream.status_code == 429 and "retry-after" in stream.headers
    assert api.get("/v1/namespaces").status_code == 200  # the valid token still works
