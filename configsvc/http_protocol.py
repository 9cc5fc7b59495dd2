"""uvicorn's httptools protocol with bounds on reading a request: its size and its time.

uvicorn keeps a request's URL and headers in memory until they are complete and puts no
bound on them, so a client could stream headers until the process runs out of memory. The
API refuses more than 32 KiB of headers (431) once they are in; this protocol refuses a
head (URL and headers) over `MAX_HEAD_BYTES` while it is still arriving, with the same
431 answer, and closes the connection.

uvicorn also waits forever for a request that arrives slowly, or for the first byte of a
new connection, so slow clients can hold every connection (slowloris). A request must be
read whole within `read_timeout` seconds of its first byte (or of the connection's
opening): otherwise the answer is 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from configsvc.api.http import MAX_HEADER_BYTES, HeadersTooLarge, RequestTimeout
from configsvc.errors import ApiError
from configsvc.settings import DEFAULT_REQUEST_READ_TIMEOUT_SECONDS

MAX_HEAD_BYTES = 2 * MAX_HEADER_BYTES
"""URL and header bytes of one request; past it the request is refused as it arrives."""
LINGER_SECONDS = 2.0
LINGER_BYTES = 2 * 1024 * 1024
"""After a refusal, how long and how much of what the client still sends is read and
dropped before the connection is closed (so that the client can read the answer)."""


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _answer(error: ApiError, reason: bytes) -> bytes:
    """A whole HTTP/1.1 answer carrying `error`'s JSON body, closing the connection."""
    body = json.dumps(error.body()).encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    head += b"connection: close\r\n\r\n"
    return head % (error.status, reason, len(body)) + body


TOO_LARGE = _answer(
    HeadersTooLarge(f"the request's URL and headers are over {MAX_HEAD_BYTES} bytes"),
    b"Request Header Fields Too Large",
)


def timed_out(seconds: float) -> bytes:
    return _answer(
        RequestTimeout(f"the request was not read whole within {seconds:g} s"),
        b"Request Timeout",
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol`, refusing a request head over `MAX_HEAD_BYTES` (431) and a
    request not read within `read_timeout` seconds (408), then closing the connection."""

    read_timeout = DEFAULT_REQUEST_READ_TIMEOUT_SECONDS
    """Seconds a request may take to arrive whole, from its first byte or the connection's
    opening (`CONFIGSVC_REQUEST_READ_TIMEOUT`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._refused = False
        self._read_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._lingered = 0
        self._in_head = False

    @classmethod
    def with_read_timeout(cls, seconds: float) -> type[BoundedHttpToolsProtocol]:
        """This protocol with another `read_timeout`."""
        return type(cls.__name__, (cls,), {"read_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._in_head = True
        self._arm_read_timer()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm_read_timer()
        super().on_message_complete()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # uvicorn's answer to the parser stopping after a refusal
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(TOO_LARGE)
            raise HeadTooLarge

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering: what the client still sends is read and dropped
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def _refuse(self, answer: bytes) -> None:
        """Answer `answer` (unless a response has begun), then close the connection.

        The close lingers (as nginx's does): what the client is still sending is read and
        dropped for up to `LINGER_SECONDS` or `LINGER_BYTES`, since closing a socket with
        unread input resets the connection, and the client would lose the answer.
        """
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        cycle = self.cycle  # the previous request's until this one's head is complete
        if self._in_head or cycle is None or not cycle.response_started:
            self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm_read_timer(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        cycle = self.cycle
        if not self._in_head and cycle is not None and cycle.waiting_for_100_continue:
            # The client waits for our "100 Continue" before sending the body, which the
            # app has not asked for yet: the delay is the service's, not the client's.
            self._arm_read_timer()
            return
        self._refuse(timed_out(self.read_timeout))
