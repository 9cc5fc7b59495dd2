"""LiveTransport's routing against scripted upstreams (httpx.MockTransport) with an injected
clock: groups and weights, breakers, task classes, caller deadlines, `total`, adaptive
read timeouts, on_status, and what a request becomes upstream."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import httpx
import pytest
from configsvc_client.live import (
    ATTEMPTS_EXTENSION,
    ENDPOINT_EXTENSION,
    BreakerState,
    CircuitOpen,
    LiveRouter,
    LiveTransport,
)

from tests.live.doubles import FakeClock, Settable, models

FAST = {"attempts": 1, "backoff_initial": 0, "backoff_max": 0, "jitter": False}


def endpoint(host: str, **fields: Any) -> dict[str, Any]:
    return {"base_url": f"http://{host}/v1", "model": f"{host}-model", "retry": FAST, **fields}


class Upstream:
    """Answers per host from a script (status, exception, or (status, seconds taken on
    the injected clock)); 200 once a script is used up. Records every request."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.scripts: dict[str, list[Any]] = {}
        self.latency: dict[str, float] = {}

    def script(self, host: str, *outcomes: Any) -> None:
        self.scripts[host] = list(outcomes)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host = request.url.host
        self.clock.advance(self.latency.get(host, 0.0))
        script = self.scripts.get(host, [])
        outcome = script.pop(0) if script else 200
        if isinstance(outcome, tuple):
            outcome, seconds = outcome
            self.clock.advance(seconds)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, json={"host": host})

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def upstream(clock: FakeClock) -> Upstream:
    return Upstream(clock)


def client(value: Any, upstream: Upstream, clock: FakeClock, **options: Any) -> httpx.AsyncClient:
    router = value if isinstance(value, LiveRouter) else LiveRouter(value, monotonic=clock)
    transport = LiveTransport(
        router,
        transport=httpx.MockTransport(upstream),
        sleep=clock.sleep,
        random=lambda: 0.5,
        clock=clock,
        **options,
    )
    return httpx.AsyncClient(base_url="http://configsvc.invalid/v1", transport=transport)


CHAT = {"model": "caller-model", "messages": [{"role": "user", "content": "hi"}]}


async def test_request_becomes_the_endpoints(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="a",
        endpoints={"a": endpoint("a.test", api_key="sk-a"), "b": endpoint("b.test")},
    )
    async with client(doc, upstream, clock) as http:
        response = await http.post(
            "/chat/completions?x=1",
            json=CHAT,
            headers={"Authorization": "Bearer caller", "X-Configsvc-Task": "classify"},
        )
    assert response.extensions[ENDPOINT_EXTENSION] == "a"
    sent = upstream.requests[0]
    assert str(sent.url) == "http://a.test/v1/chat/completions?x=1"
    assert sent.headers.get_list("authorization") == ["Bearer sk-a"]
    assert sent.headers["host"] == "a.test"
    assert "x-configsvc-task" not in sent.headers
    body = json.loads(sent.content)
    assert body == {**CHAT, "model": "a.test-model"}
    assert int(sent.headers["content-length"]) == len(sent.content)


async def test_model_swapped_only_at_the_top_level(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(default="a", endpoints={"a": endpoint("a.test")})
    nested = {
        "model": "x",
        "metadata": {"model": "x"},
        "messages": [{"role": "user", "content": '"model": "x"'}],
    }
    async with client(doc, upstream, clock) as http:
        await http.post("/chat/completions", json=nested)
        await http.post("/chat/completions", content=b'{ "model" : "x", "n": 1 }')
    first, second = (json.loads(r.content) for r in upstream.requests)
    assert first == {**nested, "model": "a.test-model"}
    assert upstream.requests[1].content == b'{ "model":"a.test-model", "n": 1 }'
    assert second == {"model": "a.test-model", "n": 1}


async def test_weights_are_honoured_across_calls(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="local",
        groups={"local": {"a": 3, "b": 1}},
        endpoints={"a": endpoint("a.test"), "b": endpoint("b.test")},
    )
    async with client(doc, upstream, clock) as http:
        for _ in range(400):
            await http.post("/chat/completions", json=CHAT)
    counts = Counter(upstream.hosts())
    assert abs(counts["a.test"] - 300) <= 2 and abs(counts["b.test"] - 100) <= 2
    # Smooth: interleaved, not 300 then 100 (a run is at most the ratio, plus one).
    run = longest = 0
    for host in upstream.hosts():
        run = run + 1 if host == "a.test" else 0
        longest = max(longest, run)
    assert longest <= 4


async def test_group_member_fails_over_to_the_others_then_fallbacks(
    upstream: Upstream, clock: FakeClock
) -> None:
    doc = models(
        default="local",
        fallbacks=["hosted"],
        groups={"local": {"a": 1, "b": 2}},
        endpoints={"a": endpoint("a.test"), "b": endpoint("b.test"), "hosted": endpoint("h.test")},
    )
    upstream.script("b.test", 503)
    upstream.script("a.test", 503)
    async with client(doc, upstream, clock) as http:
        response = await http.post("/chat/completions", json=CHAT)
    assert upstream.hosts() == ["b.test", "a.test", "h.test"]
    assert response.extensions[ENDPOINT_EXTENSION] == "hosted"
    assert response.extensions[ATTEMPTS_EXTENSION] == 3


BREAKER = {"failures": 2, "window": 10, "cooldown": 30}


async def test_breaker_opens_skips_and_recovers_with_one_trial(
    upstream: Upstream, clock: FakeClock
) -> None:
    doc = models(
        default="a",
        fallbacks=["b"],
        endpoints={"a": endpoint("a.test", breaker=BREAKER), "b": endpoint("b.test")},
    )
    router = LiveRouter(doc, monotonic=clock)
    upstream.script("a.test", 500, httpx.ConnectError("refused"), 500)
    async with client(router, upstream, clock) as http:
        await http.post("/chat/completions", json=CHAT)
        await http.post("/chat/completions", json=CHAT)
        assert router.status().endpoints["a"].breaker is BreakerState.OPEN
        # Open: `a` is skipped, not tried; the call goes straight to `b`.
        response = await http.post("/chat/completions", json=CHAT)
        assert response.extensions[ENDPOINT_EXTENSION] == "b"
        assert response.extensions[ATTEMPTS_EXTENSION] == 1
        assert upstream.hosts().count("a.test") == 2
        status = router.status().endpoints["a"]
        assert (status.skipped, status.failures) == (1, {"status_500": 1, "connect": 1})
        assert status.breaker_retry_in == pytest.approx(30)

        # After the cooldown one trial goes; it fails: open again for a full cooldown.
        clock.advance(30)
        assert router.status().endpoints["a"].breaker is BreakerState.HALF_OPEN
        await http.post("/chat/completions", json=CHAT)
        assert upstream.hosts().count("a.test") == 3
        assert router.status().endpoints["a"].breaker is BreakerState.OPEN
        clock.advance(29)
        await http.post("/chat/completions", json=CHAT)
        assert upstream.hosts().count("a.test") == 3

        # The next trial answers: closed, every call goes to `a` again.
        clock.advance(1)
        for _ in range(3):
            response = await http.post("/chat/completions", json=CHAT)
            assert response.extensions[ENDPOINT_EXTENSION] == "a"
    assert router.status().endpoints["a"].breaker is BreakerState.CLOSED


async def test_failures_outside_the_window_do_not_open(
    upstream: Upstream, clock: FakeClock
) -> None:
    doc = models(default="a", endpoints={"a": endpoint("a.test", breaker=BREAKER)})
    router = LiveRouter(doc, monotonic=clock)
    upstream.script("a.test", 500, 500)
    async with client(router, upstream, clock) as http:
        await http.post("/chat/completions", json=CHAT)
        clock.advance(11)
        await http.post("/chat/completions", json=CHAT)
    assert router.status().endpoints["a"].breaker is BreakerState.CLOSED


async def test_every_breaker_open_raises_circuit_open(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="g",
        groups={"g": {"a": 1, "b": 1}},
        endpoints={
            "a": endpoint("a.test", breaker={**BREAKER, "failures": 1}),
            "b": endpoint("b.test", breaker={**BREAKER, "failures": 1}),
        },
    )
    upstream.script("a.test", 500)
    upstream.script("b.test", 500)
    async with client(doc, upstream, clock) as http:
        assert (await http.post("/chat/completions", json=CHAT)).status_code == 500
        with pytest.raises(CircuitOpen) as info:
            await http.post("/chat/completions", json=CHAT)
    assert set(info.value.endpoints) == {"a", "b"}
    assert isinstance(info.value, httpx.TransportError)
    assert len(upstream.requests) == 2


async def test_weighted_picks_skip_open_breakers(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="g",
        groups={"g": {"a": 1, "b": 1}},
        endpoints={
            "a": endpoint("a.test", breaker={**BREAKER, "failures": 1}),
            "b": endpoint("b.test"),
        },
    )
    upstream.script("a.test", 500)
    async with client(doc, upstream, clock) as http:
        for _ in range(10):
            await http.post("/chat/completions", json=CHAT)
    # a failed once (then b answered that call); afterwards every pick is b.
    assert upstream.hosts() == ["a.test"] + ["b.test"] * 10


async def test_document_change_resets_what_no_longer_applies(
    upstream: Upstream, clock: FakeClock
) -> None:
    with_a = models(
        default="a",
        fallbacks=["b"],
        endpoints={"a": endpoint("a.test", breaker=BREAKER), "b": endpoint("b.test")},
    )
    live = Settable(with_a)
    router = LiveRouter(live, monotonic=clock)
    upstream.script("a.test", 500, 500)
    async with client(router, upstream, clock) as http:
        for _ in range(2):
            await http.post("/chat/completions", json=CHAT)
        assert router.status().endpoints["a"].breaker is BreakerState.OPEN
        # A change elsewhere keeps a's breaker open.
        live.value = models(**{**with_a.model_dump(), "fallbacks": []})
        assert router.status().endpoints["a"].breaker is BreakerState.OPEN
        # Removed, then added back: a fresh breaker.
        live.value = models(default="b", endpoints={"b": endpoint("b.test")})
        assert set(router.status().endpoints) == {"b"}
        live.value = with_a
        assert router.status().endpoints["a"].breaker is BreakerState.CLOSED
        await http.post("/chat/completions", json=CHAT)
        assert upstream.hosts()[-1] == "a.test"
        # Open it again; a new base URL under the same name is another server: fresh state.
        upstream.script("a.test", 500, 500)
        for _ in range(2):
            await http.post("/chat/completions", json=CHAT)
        assert router.status().endpoints["a"].breaker is BreakerState.OPEN
        moved = with_a.model_dump()
        moved["endpoints"]["a"]["base_url"] = "http://a2.test/v1"
        live.value = models(**moved)
        await http.post("/chat/completions", json=CHAT)
    assert upstream.hosts()[-1] == "a2.test"
    assert router.status().endpoints["a"].breaker is BreakerState.CLOSED
    assert router.status().document_changes == 5


TASKS = {
    "classify": {"timeout": {"read": 10}, "retry": {"attempts": 2}},
    "codegen": {"timeout": {"read": 900, "first_token": 120}},
}


async def test_task_class_by_header_sets_timeouts_and_retries(
    upstream: Upstream, clock: FakeClock
) -> None:
    doc = models(
        default="a",
        tasks=TASKS,
        endpoints={"a": endpoint("a.test", timeout={"read": 600, "connect": 2})},
    )
    upstream.script("a.test", 503, 503, 503)
    async with client(doc, upstream, clock) as http:
        response = await http.post(
            "/chat/completions", json=CHAT, headers={"X-Configsvc-Task": "classify"}
        )
        assert response.status_code == 503
        assert response.extensions[ATTEMPTS_EXTENSION] == 2  # the task's attempts
        timeouts = [r.extensions["timeout"] for r in upstream.requests]
        assert timeouts == [{"connect": 2, "read": 10, "write": 30, "pool": 5}] * 2
        assert all("x-configsvc-task" not in r.headers for r in upstream.requests)

        await http.post("/chat/completions", json=CHAT, headers={"X-Configsvc-Task": "unknown"})
        assert upstream.requests[-1].extensions["timeout"]["read"] == 600
        # A streamed codegen call: httpx's read covers the longest of read/first_token.
        await http.post(
            "/chat/completions",
            json={**CHAT, "stream": True},
            headers={"X-Configsvc-Task": "codegen"},
        )
        assert upstream.requests[-1].extensions["timeout"]["read"] == 900


async def test_callers_timeout_narrows_never_widens(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="a",
        endpoints={
            "a": endpoint("a.test", timeout={"connect": 3, "read": 60, "write": 30, "pool": 5})
        },
    )
    async with client(doc, upstream, clock) as http:
        await http.post("/x", json=CHAT, timeout=httpx.Timeout(10, read=2, connect=30))
        await http.post("/x", json=CHAT, timeout=None)
        await http.post("/x", json=CHAT)  # httpx's default (5 s): not the caller's choice
        await http.post("/x", json=CHAT, timeout=httpx.Timeout(600, connect=5))  # openai's
    assert [r.extensions["timeout"] for r in upstream.requests] == [
        {"connect": 3, "read": 2, "write": 10, "pool": 5},
        {"connect": 3, "read": 60, "write": 30, "pool": 5},
        {"connect": 3, "read": 60, "write": 30, "pool": 5},
        {"connect": 3, "read": 60, "write": 30, "pool": 5},
    ]


def with_total(total: float, read: float, attempts: int, **extra: Any) -> Any:
    retry = {"attempts": attempts, "backoff_initial": 1, "backoff_max": 1, "jitter": False}
    return models(
        default="a",
        fallbacks=["b"],
        endpoints={
            "a": endpoint("a.test", timeout={"read": read, "total": total}, retry=retry),
            "b": endpoint("b.test", timeout={"read": extra.get("b_read", read)}),
        },
    )


async def test_total_cuts_retries_short(upstream: Upstream, clock: FakeClock) -> None:
    upstream.latency["a.test"] = 4.0
    upstream.script("a.test", 503, 503, 503, 503)
    async with client(with_total(10, read=4, attempts=5), upstream, clock) as http:
        response = await http.post("/x", json=CHAT)
    # try 1 at 0 s (4 s), backoff 1 s, try 2 at 5 s (4 s): 1 s is left, less than the 4 s
    # read timeout of a try of a or b, so no third try starts.
    assert upstream.hosts() == ["a.test", "a.test"]
    assert response.status_code == 503
    assert clock.sleeps == [1]
    reads = [r.extensions["timeout"]["read"] for r in upstream.requests]
    assert reads == [4, 4]


async def test_total_moves_on_to_a_fallback_that_fits(upstream: Upstream, clock: FakeClock) -> None:
    upstream.latency["a.test"] = 6.0
    upstream.script("a.test", httpx.ReadTimeout("slow"), 503)
    async with client(with_total(10, read=6, attempts=3, b_read=2), upstream, clock) as http:
        response = await http.post("/x", json=CHAT)
    # 4 s left after a's first try: a needs 6, b needs 2, so b is tried at once, its
    # limits cut to what remains.
    assert upstream.hosts() == ["a.test", "b.test"]
    assert response.extensions[ENDPOINT_EXTENSION] == "b"
    assert upstream.requests[1].extensions["timeout"] == {
        "connect": 4,
        "read": 2,
        "write": 4,
        "pool": 4,
    }
    assert clock.sleeps == []


async def test_first_try_is_cut_to_total_and_error_says_why(
    upstream: Upstream, clock: FakeClock
) -> None:
    upstream.script("a.test", (httpx.ReadTimeout("slow"), 3.0))
    upstream.script("b.test", httpx.ConnectError("refused"))
    async with client(with_total(3, read=60, attempts=1, b_read=1), upstream, clock) as http:
        with pytest.raises(httpx.ReadTimeout) as info:
            await http.post("/x", json=CHAT)
    assert upstream.requests[0].extensions["timeout"]["read"] == 3
    assert upstream.hosts() == ["a.test"]
    assert "timeout.total" in info.value.__notes__[0]


ADAPTIVE = {"percentile": 50, "multiplier": 2, "min": 1, "max": 3, "samples": 4}


async def test_adaptive_read_timeout_learns_and_clamps(
    upstream: Upstream, clock: FakeClock
) -> None:
    doc = models(default="a", endpoints={"a": endpoint("a.test", adaptive=ADAPTIVE)})
    router = LiveRouter(doc, monotonic=clock)
    async with client(router, upstream, clock) as http:

        async def read_after(latency: float, calls: int) -> list[float]:
            upstream.latency["a.test"] = latency
            for _ in range(calls):
                await http.post("/x", json=CHAT)
            return [r.extensions["timeout"]["read"] for r in upstream.requests[-calls:]]

        # The document's 60 s until 4 samples; then 2 x p50, within [1, 3].
        assert await read_after(0.7, 5) == pytest.approx([60, 60, 60, 60, 1.4])
        assert await read_after(0.2, 4) == pytest.approx([1.4, 1.4, 1, 1])  # 0.4 up to min
        assert await read_after(5.0, 4) == pytest.approx([1, 1, 1, 3])  # 10 down to max
        # A streamed call learns apart from plain calls.
        await http.post("/x", json={**CHAT, "stream": True})
        assert upstream.requests[-1].extensions["timeout"]["read"] == 60
    status = router.status().endpoints["a"]
    assert status.adaptive_read == {"-/call": 3}
    assert status.latency.count == 14


async def test_a_timeout_lets_the_adaptive_timeout_grow_back(
    upstream: Upstream, clock: FakeClock
) -> None:
    adaptive = {**ADAPTIVE, "max": 100, "samples": 2}
    doc = models(default="a", endpoints={"a": endpoint("a.test", adaptive=adaptive)})
    async with client(doc, upstream, clock) as http:
        upstream.latency["a.test"] = 1.0
        for _ in range(2):
            await http.post("/x", json=CHAT)
        assert upstream.requests[-1].extensions["timeout"]["read"] == 60
        upstream.script("a.test", (httpx.ReadTimeout("slow"), 1.0), (httpx.ReadTimeout("slow"), 3))
        for _ in range(2):
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/x", json=CHAT)
        await http.post("/x", json=CHAT)
    reads = [r.extensions["timeout"]["read"] for r in upstream.requests[2:]]
    # 2 x p50 of (1, 1) = 2; the timeouts waited 2 and 4 s: 2 x p50 of (2, 4) = 4... grows.
    assert reads[0] == 2 and reads[2] > reads[1] >= reads[0]


async def test_on_status_chooses_what_is_retried(upstream: Upstream, clock: FakeClock) -> None:
    retry = {**FAST, "attempts": 2, "on_status": [408, 429]}
    doc = models(default="a", endpoints={"a": endpoint("a.test", retry=retry)})
    upstream.script("a.test", 408, 503)
    async with client(doc, upstream, clock) as http:
        response = await http.post("/x", json=CHAT)
    assert response.status_code == 503  # retried after the 408, not after the 503
    assert len(upstream.requests) == 2


async def test_openai_retries_warned_once_and_told_to_stop(
    upstream: Upstream, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    doc = models(default="a", endpoints={"a": endpoint("a.test")})
    upstream.script("a.test", 503, 503)
    async with client(doc, upstream, clock) as http:
        with caplog.at_level(logging.WARNING, "configsvc_client.live"):
            for count in ("0", "1", "2"):
                response = await http.post(
                    "/x", json=CHAT, headers={"x-stainless-retry-count": count}
                )
    warnings = [r.message for r in caplog.records if "max_retries=0" in r.message]
    assert len(warnings) == 1
    assert response.status_code == 200 and "x-should-retry" not in response.headers
    assert upstream.requests[0].headers["x-stainless-retry-count"] == "0"


async def test_status_is_plain_and_secret_free(upstream: Upstream, clock: FakeClock) -> None:
    doc = models(
        default="a",
        endpoints={"a": endpoint("a.test", api_key="sk-very-secret", breaker=BREAKER)},
    )
    router = LiveRouter(doc, monotonic=clock)
    upstream.latency["a.test"] = 0.5
    upstream.script("a.test", 502)
    async with client(router, upstream, clock) as http:
        for _ in range(4):
            await http.post("/x", json=CHAT)
    status = router.status()
    a = status.endpoints["a"]
    assert (a.tries, a.successes, a.failed) == (4, 3, 1)
    assert a.error_rate == pytest.approx(0.25)
    assert a.latency.p50 == pytest.approx(0.5) and a.latency.count == 3
    assert a.timeout.read == 60
    assert "sk-very-secret" not in repr(status)


async def test_prometheus_metrics_read_the_status_at_scrape_time(
    upstream: Upstream, clock: FakeClock
) -> None:
    from configsvc_client.live import LiveMetrics
    from prometheus_client import CollectorRegistry, generate_latest

    doc = models(
        default="a",
        fallbacks=["b"],
        endpoints={
            "a": endpoint("a.test", breaker=BREAKER, api_key="sk-hidden"),
            "b": endpoint("b.test", timeout={"read": 7, "total": 20}),
        },
    )
    router = LiveRouter(doc, monotonic=clock)
    registry = CollectorRegistry()
    LiveMetrics(registry).add(router, "chat")
    upstream.latency["b.test"] = 0.25
    upstream.script("a.test", 503, 503)
    async with client(router, upstream, clock) as http:
        for _ in range(3):
            await http.post("/x", json=CHAT)
    text = generate_latest(registry).decode()
    lines = set(text.splitlines())
    assert 'configsvc_live_tries_total{endpoint="a",router="chat"} 2.0' in lines
    assert (
        'configsvc_live_failures_total{cause="status_503",endpoint="a",router="chat"} 2.0' in lines
    )
    assert 'configsvc_live_skipped_total{endpoint="a",router="chat"} 1.0' in lines
    assert 'configsvc_live_breaker_state{endpoint="a",router="chat"} 2.0' in lines
    assert 'configsvc_live_latency_seconds{endpoint="b",quantile="0.5",router="chat"} 0.25' in lines
    assert 'configsvc_live_timeout_seconds{endpoint="b",kind="total",router="chat"} 20.0' in lines
    assert "sk-hidden" not in text
