"""Response bodies as the router hands them on: read whole, or relayed chunk by chunk.

A streamed body is relayed as it arrives, never buffered: the router waits for its
first chunk (so that a stream with nothing yet can still move to another endpoint), then
each later chunk must come within the pause allowed. A break or a pause too long raises
an error that says how much had arrived; it is never a silent end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from configsvc_client.live._errors import LiveTimeout, StreamInterrupted

BROKEN_BODY_ERRORS: tuple[type[Exception], ...] = (httpx.RemoteProtocolError, httpx.NetworkError)
"""What a body that breaks off mid-way raises from httpx."""

EVENT_STREAM = "text/event-stream"

SUCCESS = range(200, 300)
"""Answers whose body is the caller's (a stream among them is relayed)."""


def is_event_stream(response: httpx.Response) -> bool:
    """Whether the answer is Server-Sent Events (a stream, whatever the request said)."""
    kind: str = response.headers.get("content-type", "")
    return kind.startswith(EVENT_STREAM)


def short_url(request: httpx.Request) -> str:
    """The request's URL without user info or query, for messages (either may hold a
    secret)."""
    url = request.url
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


class BodyMeter:
    """What arrived of one body, for the messages of the errors that cut it."""

    __slots__ = ("bytes", "chunks", "endpoint", "request")

    def __init__(self, endpoint: str, request: httpx.Request) -> None:
        self.endpoint = endpoint
        self.request = request
        self.bytes = 0
        self.chunks = 0

    def count(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        self.chunks += 1

    def interrupted(self, exc: Exception) -> StreamInterrupted:
        return StreamInterrupted(
            self.endpoint,
            short_url(self.request),
            self.bytes,
            self.chunks,
            str(exc) or type(exc).__name__,
            request=self.request,
        )

    def timed_out(self, limit: str, seconds: float) -> LiveTimeout:
        return LiveTimeout(
            self.endpoint,
            short_url(self.request),
            limit,
            seconds,
            bytes_received=self.bytes,
            chunks_received=self.chunks,
            request=self.request,
        )


async def read_whole(stream: httpx.AsyncByteStream, meter: BodyMeter) -> bytes:
    """The whole raw body; a break raises `StreamInterrupted`. Closes the stream."""
    chunks: list[bytes] = []
    try:
        async for chunk in stream:
            meter.count(chunk)
            chunks.append(chunk)
    except BROKEN_BODY_ERRORS as exc:
        raise meter.interrupted(exc) from exc
    finally:
        await stream.aclose()
    return b"".join(chunks)


async def first_chunk(iterator: AsyncIterator[bytes], meter: BodyMeter) -> bytes | None:
    """The first non-empty chunk, or None for an empty body; a break raises
    `StreamInterrupted` (with nothing received, so the call may try elsewhere)."""
    try:
        async for chunk in iterator:
            if chunk:
                meter.count(chunk)
                return chunk
    except BROKEN_BODY_ERRORS as exc:
        raise meter.interrupted(exc) from exc
    return None


Failure = Callable[[str], None]
"""Told the cause (`idle`, `total`, `interrupted`) when a relayed stream fails."""

Close = Callable[[], Awaitable[None]]
"""Called once when a relayed stream is closed (gives its connection pool back)."""


class RelayStream(httpx.AsyncByteStream):
    """A streamed body after its first chunk: chunks pass through as they arrive; a
    pause longer than `gap`, the call's `deadline` (`(at, seconds)`, `at` in seconds of
    `monotonic`) or a break raises `LiveTimeout` / `StreamInterrupted` and reports the
    failure."""

    def __init__(
        self,
        first: bytes | None,
        iterator: AsyncIterator[bytes],
        inner: httpx.AsyncByteStream,
        meter: BodyMeter,
        *,
        gap: float,
        deadline: tuple[float, float] | None,
        monotonic: Callable[[], float],
        on_failure: Failure,
        on_close: Close | None = None,
    ) -> None:
        self._first = first
        self._iterator = iterator
        self._inner = inner
        self._meter = meter
        self._gap = gap
        self._deadline = deadline
        self._monotonic = monotonic
        self._on_failure = on_failure
        self._on_close = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._first is None:
            return
        yield self._first
        meter, iterator = self._meter, self._iterator
        while True:
            wait, limit, seconds = self._gap, "idle", self._gap
            if self._deadline is not None:
                at, seconds_total = self._deadline
                remaining = at - self._monotonic()
                if remaining < wait:
                    wait, limit, seconds = max(0.0, remaining), "total", seconds_total
            try:
                async with asyncio.timeout(wait):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                self._on_failure(limit)
                raise meter.timed_out(limit, seconds) from None
            except BROKEN_BODY_ERRORS as exc:
                self._on_failure("interrupted")
                raise meter.interrupted(exc) from exc
            meter.count(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            close, self._on_close = self._on_close, None
            if close is not None:
                await close()


class Exchange:
    """One request and its answer up to what a try waits for: the whole body, or the
    first chunk of a stream. Run under the try's time limit (`timer`, when it has one)."""

    __slots__ = (
        "body",
        "first",
        "first_byte_limit",
        "iterator",
        "meter",
        "request",
        "response",
        "stream",
        "streamed",
        "transport",
    )

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        request: httpx.Request,
        meter: BodyMeter,
        streamed: bool,
    ) -> None:
        self.transport = transport
        self.request = request
        self.meter = meter
        self.streamed = streamed
        self.response: httpx.Response | None = None
        self.stream: httpx.AsyncByteStream | None = None
        self.iterator: AsyncIterator[bytes] | None = None
        self.first: bytes | None = None
        self.body: bytes | None = None
        self.first_byte_limit = False

    async def run(
        self,
        timer: asyncio.Timeout | None,
        first_byte: float,
        started: float,
        monotonic: Callable[[], float],
    ) -> None:
        response = self.response = await self.transport.handle_async_request(self.request)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        self.stream = stream
        success = response.status_code in SUCCESS
        if not (success and (self.streamed or is_event_stream(response))):
            self.body = await read_whole(stream, self.meter)
            return
        if not self.streamed:
            # Only the answer says it is a stream: its first byte has `first_token` too.
            until = first_byte - (monotonic() - started)
            ends = timer.when() if timer is not None else None
            if ends is None or asyncio.get_running_loop().time() + until < ends:
                self.first_byte_limit = True
                self.iterator = stream.__aiter__()
                async with asyncio.timeout(until):
                    self.first = await first_chunk(self.iterator, self.meter)
                return
        self.iterator = stream.__aiter__()
        self.first = await first_chunk(self.iterator, self.meter)
