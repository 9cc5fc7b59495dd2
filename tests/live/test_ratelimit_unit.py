"""LiveRateLimiter on a fake clock: buckets, changes, token budgets, fairness, memory."""

from __future__ import annotations

import asyncio

import pytest
from configsvc_client.live import LiveRateLimiter
from configsvc_schemas import Limit, RateLimits

from tests.live.doubles import FakeClock, Settable, limits


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter_for(
    live: Settable[RateLimits], clock: FakeClock, name: str = "chat", **kwargs: object
) -> LiveRateLimiter:
    return LiveRateLimiter(live, name, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def take_all(limiter: LiveRateLimiter, key: str | None = None, tokens: int = 1) -> int:
    taken = 0
    while limiter.try_acquire(key, tokens) and taken < 10_000:
        taken += 1
    return taken


def test_burst_then_refill_at_rate(clock: FakeClock) -> None:
    limiter = limiter_for(Settable(limits(chat={"requests_per_second": 2, "burst": 5})), clock)
    assert take_all(limiter) == 5
    assert limiter.wait_time() == pytest.approx(0.5)
    clock.advance(0.5)
    assert take_all(limiter) == 1
    clock.advance(100)
    assert take_all(limiter) == 5


def test_requests_per_minute(clock: FakeClock) -> None:
    limiter = limiter_for(Settable(limits(chat={"requests_per_minute": 6, "burst": 1})), clock)
    assert take_all(limiter) == 1
    assert limiter.wait_time() == pytest.approx(10)
    clock.advance(9.9)
    assert not limiter.try_acquire()
    clock.advance(0.1)
    assert limiter.try_acquire()


def test_keys_have_their_own_buckets(clock: FakeClock) -> None:
    limiter = limiter_for(Settable(limits(chat={"requests_per_second": 1, "burst": 2})), clock)
    assert take_all(limiter, "team-a") == 2
    assert take_all(limiter, "team-b") == 2
    assert take_all(limiter, None) == 2
    assert limiter.tracked_keys == 3


def test_raised_burst_gives_no_free_burst(clock: FakeClock) -> None:
    live = Settable(limits(chat={"requests_per_second": 1, "burst": 2}))
    limiter = limiter_for(live, clock)
    assert take_all(limiter, "k") == 2
    live.value = limits(chat={"requests_per_second": 1, "burst": 100})
    assert take_all(limiter, "k") == 0
    clock.advance(3)
    assert take_all(limiter, "k") == 3
    # A key seen for the first time starts with the new, full bucket.
    assert take_all(limiter, "new") == 100


def test_lowered_burst_clamps_and_locks_nobody_out(clock: FakeClock) -> None:
    live = Settable(limits(chat={"requests_per_second": 1, "burst": 10}))
    limiter = limiter_for(live, clock)
    assert limiter.try_acquire("k")  # 9 left
    live.value = limits(chat={"requests_per_second": 1, "burst": 3})
    assert take_all(limiter, "k") == 3
    clock.advance(1)
    assert take_all(limiter, "k") == 1


def test_rate_change_applies_to_the_next_refill(clock: FakeClock) -> None:
    live = Settable(limits(chat={"requests_per_second": 1, "burst": 1}))
    limiter = limiter_for(live, clock)
    assert take_all(limiter) == 1
    live.value = limits(chat={"requests_per_second": 10, "burst": 1})
    clock.advance(0.1)
    assert take_all(limiter) == 1


def test_no_document_or_limit_means_default(clock: FakeClock) -> None:
    live: Settable[RateLimits] = Settable()
    limiter = limiter_for(live, clock)
    assert limiter.limit is None
    assert take_all(limiter) == 10_000
    live.value = limits(other={"requests_per_second": 1})
    assert take_all(limiter) == 10_000
    strict = limiter_for(live, clock, default=Limit(requests_per_second=1, burst=2))
    assert take_all(strict) == 2
    live.value = limits(chat={"requests_per_second": 1, "burst": 1})
    assert take_all(limiter) == 1
    # Fixed documents work too.
    assert LiveRateLimiter(limits(chat={"requests_per_second": 1}), "chat").try_acquire()


def test_tokens_per_minute_is_a_second_bucket(clock: FakeClock) -> None:
    live = Settable(
        limits(chat={"requests_per_second": 100, "burst": 100, "tokens_per_minute": 600})
    )
    limiter = limiter_for(live, clock)
    assert limiter.try_acquire("k", tokens=400)
    assert not limiter.try_acquire("k", tokens=400)
    assert limiter.wait_time("k", tokens=400) == pytest.approx(20)  # 200 short at 10/s
    assert limiter.try_acquire("k", tokens=200)
    assert not limiter.try_acquire("k", tokens=1)
    clock.advance(6)
    assert limiter.try_acquire("k", tokens=60)
    # A request larger than the whole budget goes when the bucket is full, then owes.
    clock.advance(60)
    assert limiter.try_acquire("k", tokens=1200)
    assert limiter.wait_time("k", tokens=1) == pytest.approx(60.1)


async def test_acquire_waits_for_a_token(clock: FakeClock) -> None:
    limiter = limiter_for(Settable(limits(chat={"requests_per_second": 2, "burst": 1})), clock)
    start = clock.now
    for _ in range(5):
        await limiter.acquire()
    assert clock.now - start == pytest.approx(2.0)


async def test_acquire_charges_tokens(clock: FakeClock) -> None:
    limiter = limiter_for(
        Settable(limits(chat={"requests_per_second": 100, "burst": 100, "tokens_per_minute": 60})),
        clock,
    )
    start = clock.now
    await limiter.acquire("k", tokens=60)
    await limiter.acquire("k", tokens=30)
    assert clock.now - start == pytest.approx(30)


async def test_waiters_are_served_in_order_and_try_acquire_does_not_overtake() -> None:
    # A real clock: the waiters really wait and wake each other.
    live = Settable(limits(chat={"requests_per_second": 200, "burst": 1}))
    limiter = LiveRateLimiter(live, "chat")
    assert limiter.try_acquire("k")
    order: list[int] = []

    async def worker(n: int) -> None:
        await limiter.acquire("k")
        order.append(n)

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(worker(n)))
        await asyncio.sleep(0)
    assert not limiter.try_acquire("k")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_cancelled_waiter_leaves_the_line(clock: FakeClock) -> None:
    live = Settable(limits(chat={"requests_per_minute": 1, "burst": 1}))
    limiter = LiveRateLimiter(live, "chat", recheck_interval=0.01)
    assert limiter.try_acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.02)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not second.done()
    # The limit is raised: the waiter notices within the recheck interval.
    live.value = limits(chat={"requests_per_second": 1000, "burst": 1})
    await asyncio.wait_for(second, 1)


async def test_waiters_pass_when_the_limit_is_removed() -> None:
    live = Settable(limits(chat={"requests_per_minute": 1, "burst": 1}))
    limiter = LiveRateLimiter(live, "chat", recheck_interval=0.01)
    assert limiter.try_acquire("k")
    waiters = [asyncio.create_task(limiter.acquire("k")) for _ in range(3)]
    await asyncio.sleep(0.02)
    live.value = limits()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)


def test_idle_keys_are_forgotten(clock: FakeClock) -> None:
    live = Settable(limits(chat={"requests_per_second": 10, "burst": 2, "tokens_per_minute": 600}))
    limiter = limiter_for(live, clock, sweep_interval=5)
    for n in range(1000):
        assert limiter.try_acquire(f"key-{n}", tokens=10)
    assert limiter.tracked_keys == 1000
    clock.advance(5)
    assert limiter.try_acquire("fresh")
    # Every bucket refilled in 5 s: the same as a new one, so it was dropped.
    assert limiter.tracked_keys == 1
    # Forgetting is invisible: a forgotten key starts full, as it would have been.
    assert take_all(limiter, "key-1") == 2


def test_bad_arguments() -> None:
    limiter = LiveRateLimiter(limits(chat={"requests_per_second": 1}), "chat")
    with pytest.raises(ValueError, match="tokens"):
        limiter.try_acquire(tokens=-1)
    with pytest.raises(ValueError, match="interval"):
        LiveRateLimiter(limits(), "chat", recheck_interval=0)
