"""`GET /v1/watch`: Server-Sent Events, served by a lean ASGI handler.

The handler authenticates, checks the namespaces, answers the headers, and hands the stream
to the fan-out, which writes the same pre-encoded bytes to every stream. An SDK names itself
(`X-Configsvc-Instance`, `X-Configsvc-Labels`), so that rollouts can choose its stream.
Under uvicorn's httptools protocol the connection itself is taken over once the headers are out
(`SseConnection`): the bytes go straight to the transport, already framed as HTTP/1.1
chunks, and no request task, queue, generator or uvicorn state is kept per stream. Under
other servers a small task per stream sends them through ASGI. Either way the unsent bytes
per stream are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl

from configsvc_schemas.wire import (
    INSTANCE_HEADER,
    LABELS_HEADER,
    STREAM_LIVENESS,
    STREAM_LIVENESS_HEADER,
)
from starlette.requests import cookie_parser

from configsvc.api.deps import Services, authenticate
from configsvc.api.http import check_headers, check_name, check_query, parse_revision
from configsvc.api.sse_connection import SseConnection
from configsvc.asgi_types import Message, Receive, Scope, Send
from configsvc.auth import Principal, Role
from configsvc.errors import ApiError, BadRequest
from configsvc.fanout import Fanout, Subscriber
from configsvc.rollouts.choice import Identity, identity_from_headers
from configsvc.sessions import SESSION_COOKIE, Session

log = logging.getLogger("configsvc.watch")

MAX_WATCH_NAMESPACES = 64
"""Namespaces one stream may watch: a catch-up reads two key ranges per namespace in one etcd
transaction, and etcd allows 128 operations in a transaction by default."""
QUERY_PARAMETERS = ("namespace", "since")
FLUSH_TIMEOUT = 2.0
"""Seconds the generic path may take to send what is queued when a stream ends."""
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
NAMED_SSE_HEADERS = [
    *SSE_HEADERS,
    (STREAM_LIVENESS_HEADER.lower().encode(), STREAM_LIVENESS.encode()),
]
"""For a stream that names an SDK instance: it stands for the instance's fleet reports."""


class SendWriter:
    """The generic ASGI path: a task sends queued bytes; another notices the disconnect."""

    def __init__(self, send: Send, receive: Receive, limit: int) -> None:
        self._send = send
        self._receive = receive
        self._limit = limit
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._closed = False
        self._tasks = [
            asyncio.create_task(self._sender()),
            asyncio.create_task(self._disconnect_listener()),
        ]

    def write(self, raw: bytes, framed: bytes) -> bool:
        if self._closed or self._queued_bytes + len(raw) > self._limit:
            return False
        self._queue.append(raw)
        self._queued_bytes += len(raw)
        self._drained.clear()
        self._wake.set()
        return True

    def is_closed(self) -> bool:
        return self._closed

    def abort(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()

    async def flush_and_stop(self) -> None:
        """Send what is queued (for at most `FLUSH_TIMEOUT` seconds), then stop the tasks."""
        if self._queue and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), FLUSH_TIMEOUT)
        self.abort()

    async def _sender(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    data = self._queue.popleft()
                    self._queued_bytes -= len(data)
                    await self._send(
                        {"type": "http.response.body", "body": data, "more_body": True}
                    )
        except OSError:
            self._closed = True

    async def _disconnect_listener(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._closed = True
                return


def _body(data: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def _since(query: dict[str, list[str]], headers: dict[str, str]) -> int | None:
    """The resume revision: `Last-Event-ID` (set by reconnecting clients), else `?since=`."""
    value = headers.get("last-event-id") or (query.get("since") or [""])[-1]
    if not value:
        return None
    return parse_revision(value, "Last-Event-ID and since")


async def _send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send(_body(body, more=False))


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """What a watch stream needs to know of its request, once it is authorised."""

    principal: Principal
    namespaces: frozenset[str]
    since: int | None
    session: Session | None = None
    """The console session the stream was opened with (the stream ends with it)."""
    identity: Identity | None = None
    """The SDK instance, as it names itself (`X-Configsvc-Instance`, `X-Configsvc-Labels`)."""


async def authorize_watch(scope: Scope, services: Services, fanout: Fanout) -> WatchRequest:
    """Check a watch request (token, namespaces, resume point, capacity); raise `ApiError`.

    Kept apart from the stream so that nothing of the parsed request stays alive for as long
    as the stream is open.
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query_string = scope.get("query_string", b"").decode("latin-1")
    query = parse_qs(query_string)
    check_headers(scope["headers"])
    check_query(parse_qsl(query_string), QUERY_PARAMETERS, repeatable=("namespace",))
    client = scope.get("client")
    principal, session = await authenticate(
        services,
        authorization=headers.get("authorization"),
        session_id=cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE),
        method="GET",
        csrf=None,
        origin=client[0] if client else None,
    )
    namespaces = query.get("namespace", [])
    if not namespaces:
        raise BadRequest("name the namespaces to watch: ?namespace=NS[&namespace=NS2]")
    if len(set(namespaces)) > MAX_WATCH_NAMESPACES:
        raise BadRequest(f"a stream may watch at most {MAX_WATCH_NAMESPACES} namespaces")
    for ns in namespaces:
        check_name(ns, "namespace")
        principal.require(Role.READER, ns)
    since = _since(query, headers)
    identity = identity_from_headers(
        headers.get(INSTANCE_HEADER.lower()), headers.get(LABELS_HEADER.lower())
    )
    fanout.check_capacity()
    return WatchRequest(principal, frozenset(namespaces), since, session, identity)


async def handle_watch(
    scope: Scope, receive: Receive, send: Send, services: Services, fanout: Fanout
) -> None:
    """Serve one watch stream.

    Under uvicorn's httptools protocol the connection is taken over as soon as the headers
    are out: the request task ends, uvicorn's state for the connection is released, and the
    fan-out catches the stream up and feeds it from then on. Elsewhere this task serves the
    stream until it ends.
    """
    try:
        request = await authorize_watch(scope, services, fanout)
    except ApiError as error:
        await _send_error(send, error)
        return

    headers = SSE_HEADERS if request.identity is None else NAMED_SSE_HEADERS
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    limit = fanout.options.max_buffer_bytes
    connection = SseConnection.of(send, limit)
    writer: SseConnection | SendWriter = connection or SendWriter(send, receive, limit)
    principal = request.principal
    subscriber = Subscriber(
        request.namespaces, principal.secrets, principal.name, writer, identity=request.identity
    )
    if request.session is not None:
        services.sessions.follow_stream(
            request.session, subscriber.done, lambda reason: _end(subscriber, fanout, reason)
        )
    if connection is not None and connection.take_over(send, lambda: _left(subscriber, fanout)):
        # Ended by the service (shutdown, revoked token, slow reader, store failure during
        # the catch-up): finish the response and close the connection.
        subscriber.done.add_done_callback(lambda _done: connection.end())
        fanout.open_stream(subscriber, request.since)
        return
    _note_fallback(services)
    try:
        await fanout.subscribe(subscriber, request.since)
        await subscriber.done
    except ApiError as error:  # the store failed during catch-up: end; the client resumes
        log.warning("a watch stream ended during its catch-up: %s", error.message)
        subscriber.say(f"stream ended: {error.message}; resume with Last-Event-ID")
    finally:
        fanout.unsubscribe(subscriber)
        if isinstance(writer, SendWriter):
            await writer.flush_and_stop()
    # Complete the response even when the connection is gone or aborted (uvicorn ignores
    # the write then), so the server does not report an unfinished response.
    with contextlib.suppress(OSError):
        await send(_body(b"", more=False))


def _note_fallback(services: Services) -> None:
    """Count a stream served through ASGI; log the first one of the app."""
    services.metrics.watch_direct_fallbacks.inc()
    services.warn_once(
        "watch-fallback",
        "a watch stream is served through ASGI, not taken over from the server: memory "
        "per stream is higher (run uvicorn with httptools; see docs/operations.md)",
    )


def _left(subscriber: Subscriber, fanout: Fanout) -> None:
    """The client of a taken-over stream went away."""
    _end(subscriber, fanout, "gone")


def _end(subscriber: Subscriber, fanout: Fanout, reason: str) -> None:
    fanout.unsubscribe(subscriber)
    subscriber.finish(reason)
