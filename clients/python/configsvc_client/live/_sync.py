"""LiveSyncTransport: the sync face of `LiveTransport`, for `httpx.Client` users (the
sync openai SDK, LangChain's sync calls).

It runs the async transport on the SDK's event-loop thread (one per process, restarted
in a forked child), so sync and async calls share one routing core; a streamed body is
handed over chunk by chunk as it arrives.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx

from configsvc_client._runtime import Runtime, register_for_fork, shared_runtime
from configsvc_client.live._router import Target
from configsvc_client.live._status import RouterStatus
from configsvc_client.live._transport import LiveTransport, Models, as_router

T = TypeVar("T")

CLOSE_TIMEOUT = 5.0
"""Seconds `close()` waits for the connection pools to close."""


class LiveSyncTransport(httpx.BaseTransport):
    """An `httpx.BaseTransport` that routes each request as `LiveTransport` does.

    Takes the same arguments as `LiveTransport` (its `transport=` is an
    `httpx.AsyncBaseTransport`, e.g. `httpx.MockTransport`). Calls from several threads
    may share it. Not to be called from the SDK's own event-loop thread (e.g. inside an
    `on_change` callback of a started client): that would wait on itself.
    """

    def __init__(self, models: Models, endpoint: str | None = None, **options: Any) -> None:
        self.router = as_router(models)
        self._endpoint = endpoint
        self._options = options
        self._live = LiveTransport(self.router, endpoint, **options)
        self._abandoned: list[LiveTransport] = []
        register_for_fork(self)

    def status(self) -> RouterStatus:
        """What the router has seen of each endpoint (see `LiveRouter.status`)."""
        return self.router.status()

    def targets(self) -> list[Target]:
        """The endpoints a call starting now would try, in order."""
        return self._live.targets()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Route `request` by the live document; see `LiveTransport`."""
        runtime = shared_runtime()
        if runtime.in_thread():
            raise RuntimeError(
                "LiveSyncTransport was called from the SDK's event-loop thread; "
                "use LiveTransport (async) there"
            )
        request.read()  # a byte stream: usable from the loop's thread, and for retries
        response = _wait(runtime, self._live.handle_async_request(request))
        stream = response.stream
        if not isinstance(stream, httpx.SyncByteStream):
            assert isinstance(stream, httpx.AsyncByteStream)
            response.stream = _BridgedStream(stream, runtime)
        return response

    def close(self) -> None:
        """Close every connection pool."""
        runtime = shared_runtime()
        if runtime.in_thread():
            raise RuntimeError("LiveSyncTransport.close() called from the SDK's loop thread")
        runtime.submit(self._live.aclose()).result(CLOSE_TIMEOUT)

    async def aclose(self) -> None:
        """Close every connection pool (on the loop's thread, at exit)."""
        await self._live.aclose()

    def _after_fork_in_child(self) -> None:
        # The parent's connections are not ours: keep them referenced and untouched.
        self._abandoned.append(self._live)
        self._live = LiveTransport(self.router, self._endpoint, **self._options)

    def __repr__(self) -> str:
        return f"LiveSyncTransport({self._live!r})"


def _wait(runtime: Runtime, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the loop's thread and wait for it; an interrupt cancels it."""
    future = runtime.submit(coro)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


async def _next(iterator: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return None


class _BridgedStream(httpx.SyncByteStream):
    """An async body read from another thread, one chunk at a time."""

    def __init__(self, stream: httpx.AsyncByteStream, runtime: Runtime) -> None:
        self._stream = stream
        self._runtime = runtime
        self._iterator = stream.__aiter__()

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := _wait(self._runtime, _next(self._iterator))) is not None:
            yield chunk

    def close(self) -> None:
        future = self._runtime.submit(self._stream.aclose())
        try:
            future.result(CLOSE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
