"""LiveHTTPClient against an httpx.MockTransport: URL, headers, timeouts, retries, fallbacks."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from configsvc_client.live import (
    ATTEMPTS_EXTENSION,
    ENDPOINT_EXTENSION,
    LiveHTTPClient,
    NotConfigured,
    StreamInterrupted,
)
from configsvc_schemas import ModelEndpoints

from tests.live.doubles import FakeClock, Settable, models

Handler = Callable[[httpx.Request], Any]

NO_JITTER = {"attempts": 3, "backoff_initial": 0.5, "backoff_max": 4, "jitter": False}


def two_endpoints(**overrides: Any) -> ModelEndpoints:
    spec: dict[str, Any] = {
        "default": "local",
        "fallbacks": ["hosted"],
        "endpoints": {
            "local": {
                "base_url": "http://local.test/v1",
                "model": "local-34b",
                "timeout": {"connect": 1, "read": 600, "write": 7, "pool": 2},
                "retry": NO_JITTER,
            },
            "hosted": {
                "base_url": "https://hosted.test/api/v1",
                "model": "gpt-x",
                "api_key": "sk-hosted",
                "retry": {**NO_JITTER, "attempts": 2},
            },
        },
    }
    spec.update(overrides)
    return models(**spec)


class Upstream:
    """Records every request; answers with a per-host script, then 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.scripts: dict[str, list[Any]] = {}

    def fail(self, host: str, *outcomes: Any) -> None:
        self.scripts[host] = list(outcomes)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        script = self.scripts.get(request.url.host, [])
        outcome = script.pop(0) if script else 200
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, httpx.Response):
            return outcome
        return httpx.Response(outcome, json={"host": request.url.host})

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(value: Any, upstream: Upstream, clock: FakeClock, **kwargs: Any) -> LiveHTTPClient:
    return LiveHTTPClient(
        value,
        transport=httpx.MockTransport(upstream),
        sleep=clock.sleep,
        random=lambda: 0.5,
        clock=clock,
        **kwargs,
    )


async def test_url_headers_timeouts_and_key(upstream: Upstream, clock: FakeClock) -> None:
    async with make_client(two_endpoints(), upstream, clock, headers={"X-App": "gw"}) as http:
        response = await http.post("/chat/completions", json={"x": 1}, headers={"X-Req": "1"})
        assert response.status_code == 200
        assert response.json() == {"host": "local.test"}
        assert response.extensions[ENDPOINT_EXTENSION] == "local"
        assert response.extensions[ATTEMPTS_EXTENSION] == 1
        sent = upstream.requests[0]
        assert str(sent.url) == "http://local.test/v1/chat/completions"
        assert "authorization" not in sent.headers
        assert sent.headers["x-app"] == "gw"
        assert sent.headers["x-req"] == "1"
        assert json.loads(sent.content) == {"x": 1}
        assert sent.extensions["timeout"] == {"connect": 1, "read": 600, "write": 7, "pool": 2}

        hosted = LiveHTTPClient(two_endpoints(), "hosted", transport=httpx.MockTransport(upstream))
        async with hosted:
            await hosted.get("models", params={"a": "b"})
        sent = upstream.requests[-1]
        assert str(sent.url) == "https://hosted.test/api/v1/models?a=b"
        assert sent.headers["authorization"] == "Bearer sk-hosted"
        assert sent.extensions["timeout"] == {"connect": 5, "read": 60, "write": 30, "pool": 5}


async def test_settings_are_read_at_each_call(upstream: Upstream, clock: FakeClock) -> None:
    live = Settable(two_endpoints())
    async with make_client(live, upstream, clock) as http:
        await http.get("/a")
        live.value = two_endpoints(default="hosted")
        await http.get("/b")
        assert upstream.hosts() == ["local.test", "hosted.test"]
        assert upstream.requests[1].headers["authorization"] == "Bearer sk-hosted"


async def test_in_flight_call_keeps_its_settings(clock: FakeClock) -> None:
    live = Settable(two_endpoints())
    release, arrived = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        arrived.set()
        if len(seen) == 1:
            await release.wait()
            return httpx.Response(503)
        return httpx.Response(200)

    http = LiveHTTPClient(live, transport=httpx.MockTransport(slow), sleep=clock.sleep)
    first = asyncio.create_task(http.get("/a"))
    await arrived.wait()
    # The document changes while the first call waits for its answer.
    live.value = two_endpoints(
        endpoints={"other": {"base_url": "http://other.test", "model": "m"}},
        default="other",
        fallbacks=[],
    )
    release.set()
    response = await first
    assert response.status_code == 200
    # The retry after the 503 still went to the endpoint the call started with.
    assert seen == ["http://local.test/v1/a", "http://local.test/v1/a"]
    await http.get("/b")
    assert seen[-1] == "http://other.test/b"
    await http.aclose()


async def test_retries_then_succeeds_with_exponential_backoff(
    upstream: Upstream, clock: FakeClock
) -> None:
    upstream.fail("local.test", 503, httpx.ConnectError("refused"))
    async with make_client(two_endpoints(), upstream, clock) as http:
        response = await http.get("/x")
    assert response.status_code == 200
    assert response.extensions[ENDPOINT_EXTENSION] == "local"
    assert response.extensions[ATTEMPTS_EXTENSION] == 3
    assert upstream.hosts() == ["local.test"] * 3
    assert clock.sleeps == [0.5, 1.0]


async def test_backoff_is_capped_and_full_jitter(upstream: Upstream, clock: FakeClock) -> None:
    retry = {"attempts": 6, "backoff_initial": 1, "backoff_max": 5, "jitter": True}
    doc = models(
        default="a", endpoints={"a": {"base_url": "http://a.test", "model": "m", "retry": retry}}
    )
    upstream.fail("a.test", 500, 500, 500, 500, 500)
    draws = iter([0.0, 0.25, 0.5, 0.75, 0.999])
    http = LiveHTTPClient(
        doc, transport=httpx.MockTransport(upstream), sleep=clock.sleep, random=lambda: next(draws)
    )
    assert (await http.get("/")).status_code == 200
    # bounds 1, 2, 4, 5 (capped), 5; each delay uniform in [0, bound).
    assert clock.sleeps == pytest.approx([0.0, 0.5, 2.0, 3.75, 4.995])
    await http.aclose()


async def test_fallbacks_in_order_after_attempts(upstream: Upstream, clock: FakeClock) -> None:
    upstream.fail("local.test", 502, httpx.ReadTimeout("slow"), 503)
    bodies: list[Any] = []
    async with make_client(two_endpoints(), upstream, clock) as http:
        response = await http.post(
            "/chat/completions",
            json=lambda endpoint: bodies.append(endpoint.model) or {"model": endpoint.model},
        )
    assert response.status_code == 200
    assert response.json() == {"host": "hosted.test"}
    assert response.extensions[ENDPOINT_EXTENSION] == "hosted"
    assert response.extensions[ATTEMPTS_EXTENSION] == 4
    assert upstream.hosts() == ["local.test"] * 3 + ["hosted.test"]
    # Each endpoint gets its own `model`; no sleep between an endpoint and the next.
    assert [json.loads(r.content)["model"] for r in upstream.requests] == [
        "local-34b",
        "local-34b",
        "local-34b",
        "gpt-x",
    ]
    assert clock.sleeps == [0.5, 1.0]


async def test_all_failing_returns_last_response(upstream: Upstream, clock: FakeClock) -> None:
    upstream.fail("local.test", 500, 500, 500)
    upstream.fail("hosted.test", 503, 504)
    async with make_client(two_endpoints(), upstream, clock) as http:
        response = await http.get("/x")
    assert response.status_code == 504
    assert len(upstream.requests) == 5


async def test_all_failing_raises_last_error_with_note(
    upstream: Upstream, clock: FakeClock
) -> None:
    upstream.fail("local.test", *[httpx.ConnectError("refused")] * 3)
    upstream.fail("hosted.test", 500, httpx.ConnectTimeout("timed out"))
    async with make_client(two_endpoints(), upstream, clock) as http:
        with pytest.raises(httpx.ConnectTimeout) as info:
            await http.get("/x")
    note = info.value.__notes__[0]
    assert "local try 1" in note
    assert "hosted try 1: 500" in note
    assert "hosted try 2" in note


async def test_no_fallbacks_when_disabled(upstream: Upstream, clock: FakeClock) -> None:
    upstream.fail("local.test", 500, 500, 500)
    async with make_client(two_endpoints(), upstream, clock, fallbacks=False) as http:
        assert (await http.get("/x")).status_code == 500
    assert upstream.hosts() == ["local.test"] * 3


async def test_non_retryable_status_is_returned_at_once(
    upstream: Upstream, clock: FakeClock
) -> None:
    upstream.fail("local.test", 400)
    async with make_client(two_endpoints(), upstream, clock) as http:
        assert (await http.get("/x")).status_code == 400
    assert len(upstream.requests) == 1


async def test_retry_after_seconds_and_date(upstream: Upstream, clock: FakeClock) -> None:
    clock.now = 1_700_000_000.0
    date = email.utils.formatdate(clock.now + 3, usegmt=True)
    upstream.fail(
        "local.test",
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(503, headers={"Retry-After": date}),
    )
    async with make_client(two_endpoints(), upstream, clock) as http:
        assert (await http.get("/x")).status_code == 200
    # The date was 3 s after "now", and 2 s have passed by the second try.
    assert clock.sleeps == [2.0, 1.0]


async def test_retry_after_beyond_backoff_max_moves_to_fallback(
    upstream: Upstream, clock: FakeClock
) -> None:
    upstream.fail("local.test", httpx.Response(429, headers={"Retry-After": "120"}))
    async with make_client(two_endpoints(), upstream, clock) as http:
        response = await http.get("/x")
    assert response.extensions[ENDPOINT_EXTENSION] == "hosted"
    assert upstream.hosts() == ["local.test", "hosted.test"]
    assert clock.sleeps == []


async def test_not_configured(upstream: Upstream, clock: FakeClock) -> None:
    live: Settable[ModelEndpoints] = Settable()
    async with make_client(live, upstream, clock) as http:
        with pytest.raises(NotConfigured, match="no value"):
            await http.get("/x")
        live.value = two_endpoints()
        missing = make_client(live, upstream, clock, endpoint="nope")
        with pytest.raises(NotConfigured, match="'nope'"):
            await missing.get("/x")
        assert [t.name for t in http.targets()] == ["local", "hosted"]
    assert upstream.requests == []


async def test_masked_key_is_not_sent(
    upstream: Upstream, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    doc = models(
        default="h", endpoints={"h": {"base_url": "http://h.test", "model": "m", "api_key": "****"}}
    )
    async with make_client(doc, upstream, clock) as http:
        with caplog.at_level(logging.WARNING, "configsvc_client.live"):
            await http.get("/x")
            await http.get("/x")
    assert all("authorization" not in r.headers for r in upstream.requests)
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "secrets" in caplog.records[0].message


class BrokenBody(httpx.AsyncByteStream):
    """A body that sends some chunks, then breaks like a dying chunked response."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body: incomplete chunked read"
        )


async def test_stream_broken_mid_body_says_how_much(clock: FakeClock) -> None:
    chunks = [b'data: {"a": 1}\n\n', b'data: {"b": 2}\n\n']

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=BrokenBody(chunks))

    http = LiveHTTPClient(two_endpoints(), transport=httpx.MockTransport(handler))
    lines: list[str] = []
    async with http.stream("POST", "/chat/completions", json={}) as response:
        assert response.status_code == 200
        with pytest.raises(StreamInterrupted) as info:
            async for line in response.aiter_lines():
                lines.append(line)
    error = info.value
    assert isinstance(error, httpx.TransportError)
    assert (error.endpoint, error.chunks_received) == ("local", 2)
    assert error.bytes_received == sum(map(len, chunks))
    assert "after 32 bytes in 2 chunks" in str(error)
    assert "incomplete chunked read" in str(error)
    assert "http://local.test/v1/chat/completions" in str(error)
    assert lines[0] == 'data: {"a": 1}'
    await http.aclose()


async def test_broken_body_is_retried_when_not_streaming(clock: FakeClock) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(200, stream=BrokenBody([b"partial"]))
        return httpx.Response(200, json={"ok": True})

    http = LiveHTTPClient(
        two_endpoints(), transport=httpx.MockTransport(handler), sleep=clock.sleep
    )
    response = await http.post("/chat/completions", json={})
    assert response.json() == {"ok": True}
    assert calls == 2
    await http.aclose()


async def test_stream_retries_before_the_body(upstream: Upstream, clock: FakeClock) -> None:
    upstream.fail("local.test", 503, 503, 503)
    http = make_client(two_endpoints(), upstream, clock)
    async with http.stream("GET", "/x") as response:
        assert response.extensions[ENDPOINT_EXTENSION] == "hosted"
        assert (await response.aread()) == b'{"host":"hosted.test"}'
    await http.aclose()


async def test_cancelled_call_propagates(clock: FakeClock) -> None:
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError

    http = LiveHTTPClient(two_endpoints(), transport=httpx.MockTransport(hang))
    task = asyncio.create_task(http.get("/x"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await http.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await http.get("/x")


class ClosingTransport(httpx.MockTransport):
    """A MockTransport that counts how many clients closed it (one per pool)."""

    def __init__(self, handler: Callable[[httpx.Request], Any]) -> None:
        super().__init__(handler)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_pools_are_reused_and_retired_after_in_flight_calls() -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            arrived.set()
            await release.wait()
        return httpx.Response(200, text=request.url.host)

    transport = ClosingTransport(handler)
    one = {"default": "e", "endpoints": {"e": {"base_url": "http://one.test", "model": "m"}}}
    live = Settable(models(**one))
    http = LiveHTTPClient(live, transport=transport)
    slow = asyncio.create_task(http.get("/slow"))
    await arrived.wait()
    assert (await http.get("/fast")).text == "one.test"  # same pool, nothing closed
    assert transport.closed == 0

    live.value = models(default="e", endpoints={"e": {"base_url": "http://two.test", "model": "m"}})
    assert (await http.get("/x")).text == "two.test"
    assert transport.closed == 0  # one.test still has a call in flight
    release.set()
    assert (await slow).text == "one.test"
    assert transport.closed == 1  # closed as its last call ended

    # A change that keeps the base URL keeps the pool.
    live.value = models(
        default="e",
        endpoints={"e": {"base_url": "http://two.test", "model": "other", "timeout": {"read": 1}}},
    )
    await http.get("/y")
    assert transport.closed == 1
    await http.aclose()
    assert transport.closed == 2


async def test_errors_are_config_errors() -> None:
    from configsvc_client import ConfigError
    from configsvc_client.live import LiveError

    assert issubclass(NotConfigured, LiveError)
    assert issubclass(LiveError, ConfigError)
    assert issubclass(StreamInterrupted, httpx.TransportError)


async def test_endpoint_key_replaces_a_callers_authorization(
    upstream: Upstream, clock: FakeClock
) -> None:
    for endpoint in ("hosted", "local"):
        async with make_client(two_endpoints(), upstream, clock, endpoint=endpoint) as http:
            await http.get("/x", headers={"authorization": "Bearer caller-key"})
    assert upstream.requests[0].headers.get_list("authorization") == ["Bearer sk-hosted"]
    # An endpoint without a key leaves the caller's header alone.
    assert upstream.requests[1].headers.get_list("authorization") == ["Bearer caller-key"]


async def test_task_class_per_call(upstream: Upstream, clock: FakeClock) -> None:
    doc = two_endpoints(tasks={"classify": {"timeout": {"read": 10}, "retry": {"attempts": 1}}})
    upstream.fail("local.test", 503)
    async with make_client(doc, upstream, clock) as http:
        response = await http.post("/chat/completions", json={}, task="classify")
    assert response.extensions[ENDPOINT_EXTENSION] == "hosted"  # one try of local only
    assert upstream.requests[0].extensions["timeout"]["read"] == 10
    assert upstream.requests[1].extensions["timeout"]["read"] == 10  # hosted: the task's too
    assert "x-configsvc-task" not in upstream.requests[0].headers
