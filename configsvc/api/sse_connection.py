"""A watch stream's connection: taken from uvicorn once its headers are out, then written to.

uvicorn keeps ~9 KiB of state per connection for as long as a response runs (its httptools
protocol and parser, the request cycle, two `asyncio.Event`s, the request task). A watch
stream needs none of it once its headers are out: `SseConnection.take_over` makes itself
the transport's protocol, lets uvicorn forget the connection, and the request task ends.
What stays per stream is the transport, this object and the fan-out's `Subscriber`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from configsvc.asgi_types import Send

CHUNKED_END = b"0\r\n\r\n"
TLS_CLOSE_GRACE_SECONDS = 0.5
"""How long a TLS connection being closed may wait for the client's close_notify before it
is dropped (asyncio would wait 30 s; a client that is not reading never answers)."""

TRANSPORT_METHODS = ("write", "is_closing", "get_write_buffer_size", "abort", "set_protocol")
"""What the direct path needs of a transport. Checked by name: uvloop's transports (which
uvicorn uses whenever uvloop is installed) are not `asyncio.Transport` subclasses."""


def _is_uvicorn_httptools(protocol: object) -> bool:
    """Whether `protocol` is uvicorn's httptools protocol (or one made from it), whose
    per-connection state `SseConnection.take_over` knows how to release."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn serves HTTP with h11
        return False
    return isinstance(protocol, HttpToolsProtocol)


def _cycle_of(send: Send) -> Any:
    """uvicorn's request cycle, whose bound method `send` is (None for other servers)."""
    return getattr(send, "__self__", None)


class SseConnection(asyncio.Protocol):
    """Writes pre-encoded events to one stream; drops it past `limit` unsent bytes."""

    __slots__ = ("_on_lost", "chunked", "limit", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool, limit: int) -> None:
        self.transport = transport
        self.chunked = chunked
        self.limit = limit
        self._on_lost: Callable[[], None] | None = None

    @classmethod
    def of(cls, send: Send, limit: int) -> SseConnection | None:
        """The connection behind uvicorn's `send` (after the response headers), else None."""
        cycle = _cycle_of(send)
        transport = getattr(cycle, "transport", None)
        chunked = getattr(cycle, "chunked_encoding", None)
        if isinstance(chunked, bool) and all(
            callable(getattr(transport, method, None)) for method in TRANSPORT_METHODS
        ):
            return cls(cast("asyncio.Transport", transport), chunked, limit)
        return None

    # ---- the fan-out's StreamWriter ----------------------------------------------------

    def write(self, raw: bytes, framed: bytes) -> bool:
        transport = self.transport
        if transport.is_closing() or transport.get_write_buffer_size() > self.limit:
            return False
        transport.write(framed if self.chunked else raw)
        return True

    def is_closed(self) -> bool:
        return self.transport.is_closing()

    def abort(self) -> None:
        self.transport.abort()

    def end(self) -> None:
        """Finish the response (the last chunk) and close the connection; over TLS, drop
        it if the client has not answered the close within `TLS_CLOSE_GRACE_SECONDS`."""
        transport = self.transport
        if not transport.is_closing():
            if self.chunked:
                transport.write(CHUNKED_END)
            transport.close()
            if transport.get_extra_info("sslcontext") is not None:
                loop = asyncio.get_running_loop()
                loop.call_later(TLS_CLOSE_GRACE_SECONDS, self._drop_unless_lost)

    def _drop_unless_lost(self) -> None:
        if self._on_lost is not None:
            self.transport.abort()

    # ---- taking the connection from uvicorn --------------------------------------------

    def take_over(self, send: Send, on_lost: Callable[[], None]) -> bool:
        """Become the transport's protocol and release uvicorn's state; False if not safe.

        Done only on uvicorn's httptools protocol with this request as its only one (no
        pipelined request queued, the request fully read). uvicorn's request cycle is marked
        complete so that it neither finishes nor closes the response when the handler
        returns; from then on this object ends the response (`end`) and `on_lost` runs when
        the client goes away.
        """
        cycle = _cycle_of(send)
        protocol: Any = self.transport.get_protocol()
        if (
            not _is_uvicorn_httptools(protocol)
            or getattr(protocol, "cycle", None) is not cycle
            or getattr(protocol, "pipeline", True)
            or getattr(cycle, "more_body", True)
            or getattr(cycle, "disconnected", True)
            or not isinstance(getattr(protocol, "connections", None), set)
            or self.transport.is_closing()
        ):
            return False
        self._on_lost = on_lost
        self.transport.set_protocol(self)
        protocol.connections.discard(protocol)
        protocol.cycle.response_complete = True
        protocol.parser = None
        return True

    # ---- asyncio.Protocol, once taken over ---------------------------------------------

    def data_received(self, data: bytes) -> None:
        """A stream's client has nothing more to say; what it sends is dropped."""

    def eof_received(self) -> bool:
        return False  # the client is gone: close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()
