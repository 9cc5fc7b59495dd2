"""Following `GET /v1/watch` (Server-Sent Events): reconnect with backoff, resume exactly.

After a drop the stream resumes with `Last-Event-ID` (the last revision seen), so every
change is seen once and in order; a stream silent past `idle_timeout` (not even a
keep-alive comment) counts as dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from configsvc_schemas.backoff import Backoff
from configsvc_schemas.sse import SSEError, SSEParser
from configsvc_schemas.wire import EVENT_STREAM, LAST_EVENT_ID, WATCH_PATH

from configsvc.cli._errors import CliError, ServiceError
from configsvc.cli._http import Api

CONNECT_TIMEOUT = 10.0
BACKOFF_INITIAL = 0.5
BACKOFF_RESET_AFTER = 30.0
PERMANENT_STATUSES = frozenset({400, 401, 403, 404})
"""Answers that another attempt would get again: give up with the service's reason."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event: `snapshot`, `put` or `delete`, its store revision and its JSON data."""

    kind: str
    revision: int | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    idle_timeout: float
    max_delay: float


class Follower:
    """Follows the watch stream of `namespaces` until Ctrl-C or a permanent refusal."""

    def __init__(
        self,
        api: Api,
        namespaces: list[str],
        options: StreamOptions,
        on_event: Callable[[StreamEvent], None],
        on_note: Callable[[str], None],
        *,
        since: int | None = None,
    ) -> None:
        self._api = api
        self._namespaces = namespaces
        self._options = options
        self._on_event = on_event
        self._on_note = on_note
        self.last_id: str | None = str(since) if since is not None else None
        self._backoff = Backoff(
            BACKOFF_INITIAL, options.max_delay, BACKOFF_RESET_AFTER, clock=time.monotonic
        )

    def run(self) -> None:
        """Stream, and reconnect after every drop. The first connection must succeed."""
        connected_once = False
        while True:
            try:
                self._stream_once(connected_once)
                reason = "the service closed the stream"
            except ServiceError as exc:
                if exc.status in PERMANENT_STATUSES:
                    raise
                reason = exc.summary()
            except (httpx.HTTPError, SSEError) as exc:
                if not connected_once and isinstance(exc, httpx.ConnectError | httpx.InvalidURL):
                    raise self._api.transport_error(exc) from None
                reason = _describe(exc, self._api)
            connected_once = True
            delay = self._backoff.next_delay()
            self._on_note(f"stream dropped ({reason}); reconnecting in {delay:.1f} s")
            time.sleep(delay)

    def _stream_once(self, reconnecting: bool) -> None:
        headers = {"Accept": EVENT_STREAM}
        if self.last_id is not None:
            headers[LAST_EVENT_ID] = self.last_id
        timeout = httpx.Timeout(self._options.idle_timeout, connect=CONNECT_TIMEOUT)
        params = {"namespace": self._namespaces}
        with self._api.stream(WATCH_PATH, params=params, headers=headers, timeout=timeout) as resp:
            self._backoff.connected()
            if reconnecting:
                self._on_note(f"reconnected, resuming after revision {self.last_id}")
            parser = SSEParser()
            for chunk in resp.iter_bytes():
                for event in parser.feed(chunk):
                    self._dispatch(event.event, event.data, event.id)

    def _dispatch(self, kind: str, data: str, event_id: str | None) -> None:
        try:
            body = json.loads(data)
        except json.JSONDecodeError:
            raise CliError(f"the watch stream sent an event that is not JSON: {kind}") from None
        revision = int(event_id) if event_id and event_id.isdigit() else body.get("revision")
        self._on_event(StreamEvent(kind, revision, body if isinstance(body, dict) else {}))
        if event_id is not None:
            self.last_id = event_id


def _describe(exc: Exception, api: Api) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return "no data, not even a keep-alive, in time"
    if isinstance(exc, httpx.HTTPError):
        return api.describe_failure(exc)
    return str(exc)
