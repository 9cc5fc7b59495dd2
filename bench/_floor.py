"""The floor: the least an SSE server can do here, run as its own process.

`GET <any path>` is answered with SSE headers (chunked, as uvicorn sends them) and a small
snapshot event, and the connection's transport is remembered. `POST /publish` carries one
pre-encoded SSE event in its body: it is framed as an HTTP/1.1 chunk ONCE and the same bytes
are written to every remembered transport, then the POST is answered 204. No task, queue,
generator or parsing per stream: a transport and a small Protocol object per connection.

Run: python bench/_floor.py PORT  (prints "ready" on stdout once it listens)
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

from configsvc.rlimits import raise_open_files_limit

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"x-accel-buffering: no\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
SNAPSHOT = b'id: 0\nevent: snapshot\ndata: {"revision":0,"items":[]}\n\n'
PUBLISHED = b"HTTP/1.1 204 No Content\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
BACKLOG = 4096


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class FloorConnection(asyncio.Protocol):
    __slots__ = ("_buf", "_streams", "_transport")

    def __init__(self, streams: set[asyncio.Transport]) -> None:
        self._streams = streams
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but behave as one
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if transport in self._streams:
            return  # a stream's client sends nothing more that matters
        self._buf += data
        while True:
            head_end = self._buf.find(b"\r\n\r\n")
            if head_end == -1:
                return
            head = self._buf[:head_end]
            if head.startswith(b"GET "):
                self._buf = b""
                transport.write(SSE_HEAD + chunk(SNAPSHOT))
                self._streams.add(transport)
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body_end = head_end + 4 + length
            if len(self._buf) < body_end:
                return
            body = self._buf[head_end + 4 : body_end]
            self._buf = self._buf[body_end:]
            if head.startswith(b"POST /publish "):
                framed = chunk(body)
                for stream in self._streams:
                    stream.write(framed)
                transport.write(PUBLISHED)
            else:
                transport.write(NOT_FOUND)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._streams.discard(self._transport)


async def serve(port: int) -> None:
    streams: set[asyncio.Transport] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FloorConnection(streams), "127.0.0.1", port, backlog=BACKLOG
    )
    print("ready", type(loop).__module__, flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    raise_open_files_limit()
    port = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:  # the service's uvicorn falls back to asyncio's loop likewise
        asyncio.run(serve(port))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(port))


if __name__ == "__main__":
    main()
