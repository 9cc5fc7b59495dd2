"""A small Server-Sent Events parser: bytes in, events out (WHATWG event-stream rules)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BUFFER = 64 * 1024 * 1024
"""Bytes of one unfinished line the parser holds before it gives up on the stream."""

_BOM = b"\xef\xbb\xbf"


class SSEError(ValueError):
    """The byte stream cannot be an event stream (a line longer than the limit)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `id` is the last event id in effect when it was dispatched."""

    event: str
    data: str
    id: str | None = None


class SSEParser:
    """Incremental parser: `feed` any chunking of the stream and get the same events.

    Lines end with CRLF, LF or CR (also split across chunks); comments (`:` lines) and
    unknown fields are ignored; `retry:` with digits only sets `retry` (milliseconds).
    """

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self._max_buffer = max_buffer
        self._buffer = b""
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by `chunk`, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            buffer = buffer.removeprefix(_BOM)
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                self._skip_lf = True
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > self._max_buffer:
            raise SSEError(f"an event-stream line is longer than {self._max_buffer} bytes")
        events: list[SSEEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event_type, self._event = self._event or "message", ""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return SSEEvent(event_type, data, self.last_event_id)
