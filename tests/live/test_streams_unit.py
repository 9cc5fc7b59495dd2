"""Streamed calls through LiveTransport and LiveSyncTransport against scripted bodies:
a late first token moves on transparently, a stall or a break after the first byte
raises a clear error, chunks pass through as they arrive, `total` cuts a long stream.

The waits here are real but short (tens of milliseconds): what is asserted is where the
call went and what was raised, never how long it took."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from configsvc_client.live import (
    ENDPOINT_EXTENSION,
    LiveRouter,
    LiveSyncTransport,
    LiveTimeout,
    LiveTransport,
    StreamInterrupted,
)

from tests.live.doubles import models

SHORT = 0.05
"""A limit short enough for a fast test, long enough for a loaded machine's loopback."""
NEVER = 3600.0

ONE_TRY = {"attempts": 1, "backoff_initial": 0, "backoff_max": 0, "jitter": False}
STREAM = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


class Body(httpx.AsyncByteStream):
    """Chunks sent after the given delays (NEVER: hang); `broken`: break at the end."""

    def __init__(self, *steps: tuple[float, bytes], broken: bool = False) -> None:
        self.steps = steps
        self.broken = broken
        self.sent: list[bytes] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, chunk in self.steps:
            await asyncio.sleep(delay)
            self.sent.append(chunk)
            yield chunk
        if self.broken:
            raise httpx.RemoteProtocolError("incomplete chunked read")


def sse(*steps: tuple[float, bytes], broken: bool = False) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Body(*steps, broken=broken)
    )


def doc(**timeouts: Any) -> Any:
    return models(
        default="a",
        fallbacks=["b"],
        endpoints={
            "a": {
                "base_url": "http://a.test/v1",
                "model": "m",
                "retry": ONE_TRY,
                "timeout": timeouts,
            },
            "b": {"base_url": "http://b.test/v1", "model": "m", "retry": ONE_TRY},
        },
    )


def upstream(**bodies: httpx.Response) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        seen.append(host)
        return bodies.get(host) or sse((0, b"data: from-" + host.encode() + b"\n\n"))

    return httpx.MockTransport(handler), seen


def client(document: Any, transport: httpx.MockTransport) -> httpx.AsyncClient:
    live = LiveTransport(LiveRouter(document), transport=transport)
    return httpx.AsyncClient(base_url="http://configsvc.invalid/v1", transport=live)


async def read_stream(http: httpx.AsyncClient, body: Any = STREAM) -> tuple[httpx.Response, bytes]:
    async with http.stream("POST", "/chat/completions", json=body) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_late_first_token_moves_on_transparently() -> None:
    transport, seen = upstream(a=sse((NEVER, b"data: late\n\n")))
    async with client(doc(first_token=SHORT), transport) as http:
        response, body = await read_stream(http)
    assert seen == ["a", "b"]
    assert response.extensions[ENDPOINT_EXTENSION] == "b"
    assert body == b"data: from-b\n\n"


async def test_answer_that_turns_out_a_stream_gets_first_token_too() -> None:
    # No "stream": true in the body, but the answer is an event stream.
    transport, seen = upstream(a=sse((NEVER, b"data: late\n\n")))
    async with client(doc(first_token=SHORT), transport) as http:
        response = await http.post("/chat/completions", json={"model": "m"})
    assert seen == ["a", "b"]
    assert response.content == b"data: from-b\n\n"


async def test_break_before_the_first_byte_moves_on() -> None:
    transport, seen = upstream(a=sse(broken=True))
    async with client(doc(), transport) as http:
        _, body = await read_stream(http)
    assert seen == ["a", "b"]
    assert body == b"data: from-b\n\n"


async def test_stall_after_the_first_byte_raises_and_says_how_much() -> None:
    stalled = sse((0, b"data: one\n\n"), (0, b"data: two\n\n"), (NEVER, b"data: three\n\n"))
    transport, seen = upstream(a=stalled)
    router = LiveRouter(doc(idle=SHORT))
    live = LiveTransport(router, transport=transport)
    got: list[bytes] = []
    async with (
        httpx.AsyncClient(base_url="http://x.invalid/v1", transport=live) as http,
        http.stream("POST", "/chat/completions", json=STREAM) as response,
    ):
        with pytest.raises(LiveTimeout) as info:
            async for chunk in response.aiter_raw():
                got.append(chunk)
    error = info.value
    assert got == [b"data: one\n\n", b"data: two\n\n"]  # nothing was withheld or dropped
    assert (error.limit, error.endpoint, error.chunks_received) == ("idle", "a", 2)
    assert "timeout.idle" in str(error) and "after 22 bytes in 2 chunks" in str(error)
    assert isinstance(error, httpx.ReadTimeout)
    assert seen == ["a"]  # never retried once the caller has seen part of it
    assert router.status().endpoints["a"].failures == {"idle": 1}


async def test_break_after_the_first_byte_raises_stream_interrupted() -> None:
    transport, _ = upstream(a=sse((0, b"data: one\n\n"), broken=True))
    async with client(doc(), transport) as http:
        with pytest.raises(StreamInterrupted, match="after 11 bytes in 1 chunks"):
            await read_stream(http)


async def test_chunks_pass_through_as_they_arrive() -> None:
    release = asyncio.Event()

    class Gated(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await release.wait()
            yield b"data: second\n\n"

    transport, _ = upstream(
        a=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Gated())
    )
    async with (
        client(doc(), transport) as http,
        http.stream("POST", "/chat/completions", json=STREAM) as response,
    ):
        chunks = response.aiter_raw()
        # The first chunk reaches the caller while the upstream holds back the second.
        assert await anext(chunks) == b"data: first\n\n"
        release.set()
        assert await anext(chunks) == b"data: second\n\n"


async def test_total_cuts_a_long_stream() -> None:
    trickle = sse(*[(SHORT / 2, b"data: x\n\n")] * 1000)
    transport, _ = upstream(a=trickle)
    async with client(doc(total=4 * SHORT, idle=NEVER), transport) as http:
        with pytest.raises(LiveTimeout) as info:
            await read_stream(http)
    assert info.value.limit == "total"
    assert 0 < info.value.chunks_received < 1000


def test_sync_transport_streams_and_falls_over() -> None:
    transport, seen = upstream(a=sse((NEVER, b"data: late\n\n")))
    live = LiveSyncTransport(doc(first_token=SHORT), transport=transport)
    with httpx.Client(base_url="http://x.invalid/v1", transport=live) as http:
        with http.stream("POST", "/chat/completions", json=STREAM) as response:
            lines = list(response.iter_lines())
        plain = http.post("/chat/completions", json={"model": "m"})
    assert lines == ["data: from-b", ""]
    assert seen == ["a", "b", "a", "b"]
    assert plain.extensions[ENDPOINT_EXTENSION] == "b"
    assert live.status().endpoints["a"].failures == {"first_token": 2}


def test_sync_transport_works_in_a_forked_child() -> None:
    transport, _ = upstream()
    live = LiveSyncTransport(doc(), transport=transport)
    with httpx.Client(base_url="http://x.invalid/v1", transport=live) as http:
        assert http.post("/chat/completions", json={"model": "m"}).status_code == 200
        pid = os.fork()
        if pid == 0:  # the child: a new event-loop thread, its own connections
            try:
                ok = http.post("/chat/completions", json={"model": "m"}).status_code == 200
                code = 0 if ok else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_errors_name_no_user_info_nor_query() -> None:
    document = models(
        default="a",
        endpoints={
            "a": {"base_url": "http://user:s3cret@a.test/v1", "model": "m", "retry": ONE_TRY}
        },
    )
    transport, _ = upstream(a=sse((0, b"data: one\n\n"), broken=True))
    async with client(document, transport) as http:
        with pytest.raises(StreamInterrupted) as info:
            await read_stream(http, STREAM)
    assert "http://a.test/v1/chat/completions" in str(info.value)
    assert "s3cret" not in str(info.value)
