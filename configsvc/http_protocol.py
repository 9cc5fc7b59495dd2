"""uvicorn's httptools protocol with a bound on the size of a request's head.

uvicorn keeps a request's URL and headers in memory until they are complete and puts no
bound on them, so a client could stream headers until the process runs out of memory. The
API refuses more than 32 KiB of headers (431) once they are in; this protocol refuses a
head (URL and headers) over `MAX_HEAD_BYTES` while it is still arriving, with the same
431 answer, and closes the connection.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from configsvc.api.http import MAX_HEADER_BYTES, HeadersTooLarge

MAX_HEAD_BYTES = 2 * MAX_HEADER_BYTES
"""URL and header bytes of one request; past it the request is refused as it arrives."""


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _refusal() -> bytes:
    error = HeadersTooLarge(f"the request's URL and headers are over {MAX_HEAD_BYTES} bytes")
    body = json.dumps(error.body()).encode()
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\n"
        b"connection: close\r\n\r\n"
    )
    return head % len(body) + body


REFUSAL = _refusal()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol`, refusing a request head over `MAX_HEAD_BYTES` (431, then close)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._refused = False

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

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
            if not self._refused:
                self._refused = True
                self.transport.write(REFUSAL)
                self.transport.close()
            raise HeadTooLarge
