"""StreamingSource: `GET /v1/watch` over Server-Sent Events, resumed with `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
from configsvc_schemas.backoff import Backoff
from configsvc_schemas.sse import SSEError, SSEEvent, SSEParser
from configsvc_schemas.wire import (
    EVENT_STREAM,
    LAST_EVENT_ID,
    STREAM_LIVENESS,
    STREAM_LIVENESS_HEADER,
    WATCH_PATH,
    EventName,
)

from configsvc_client._options import ClientOptions
from configsvc_client._sources._wire import (
    MAX_ERROR_BODY,
    Endpoints,
    auth_headers,
    error_from_exception,
    error_from_status,
)
from configsvc_client._types import (
    Change,
    Document,
    ResumePoint,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Update,
)


class StreamingSource:
    """Keeps one watch stream open for the client's namespaces.

    Yields VALID when a stream opens and with each event (a chunk of keep-alive bytes
    yields a bare VALID: the stream is alive). A drop, an error answer, or silence longer
    than `options.silence_timeout` yields INTERRUPTED, then it reconnects after a full-
    jitter backoff, resuming from `since()`; 401/403 yield OFF and it retries only every
    `options.auth_retry_interval`. Several URLs are tried in turn.
    """

    name = "streaming"

    def __init__(
        self,
        http: httpx.AsyncClient,
        urls: Sequence[str],
        namespaces: Sequence[str],
        token: str | None,
        options: ClientOptions,
        *,
        identity: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._endpoints = Endpoints(urls)
        self._params: list[tuple[str, str | int | float | bool | None]] = [
            ("namespace", ns) for ns in namespaces
        ]
        self._token = token
        self._identity = dict(identity or {})
        """Headers naming this client (instance id, labels): the service may choose by them."""
        self._options = options
        self._rng = rng
        self._clock = clock
        self._sleep = sleep
        self._timeout = httpx.Timeout(
            connect=options.connect_timeout,
            read=options.silence_timeout,
            write=options.connect_timeout,
            pool=options.connect_timeout,
        )
        self.vouched = False
        """Whether a stream is open whose service counts it as this client's periodic fleet
        report (it named itself, and the service said so): then only changes are reported."""

    async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
        options = self._options
        backoff = Backoff(
            options.backoff_initial,
            options.backoff_max,
            options.backoff_reset_after,
            rng=self._rng,
            clock=self._clock,
        )
        while True:
            url = self._endpoints.current
            error: SourceErrorInfo
            try:
                async with self._http.stream(
                    "GET",
                    url + WATCH_PATH,
                    params=self._params,
                    headers=self._headers(since()),
                    timeout=self._timeout,
                ) as response:
                    if response.status_code != httpx.codes.OK:
                        body = await _read_some(response)
                        error = error_from_status(response.status_code, body)
                    elif not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                        error = SourceErrorInfo("protocol_error", f"{url}: not an event stream")
                    else:
                        backoff.connected()
                        self.vouched = bool(self._identity) and (
                            response.headers.get(STREAM_LIVENESS_HEADER) == STREAM_LIVENESS
                        )
                        yield Update(SourceState.VALID)
                        parser = SSEParser()
                        async for chunk in response.aiter_raw():
                            updates = list(_updates(parser.feed(chunk)))
                            for update in updates or [Update(SourceState.VALID)]:
                                yield update
                        error = SourceErrorInfo(
                            "disconnected", f"{url}: the service ended the stream"
                        )
            except httpx.ReadTimeout:
                error = SourceErrorInfo(
                    "silent", f"{url}: nothing for {options.silence_timeout:g} s"
                )
            except httpx.HTTPError as exc:
                error = error_from_exception(exc, url)
            except (SSEError, ValueError) as exc:
                error = SourceErrorInfo("protocol_error", f"{url}: {exc}")
            finally:
                self.vouched = False
            self._endpoints.failed()
            if error.permanent:
                yield Update(SourceState.OFF, error=error)
                delay = options.auth_retry_interval
            else:
                yield Update(SourceState.INTERRUPTED, error=error)
                delay = backoff.next_delay()
            await self._sleep(delay)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client is shared and closed by its owner."""

    def _headers(self, resume: int | None) -> dict[str, str]:
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache", **self._identity}
        headers.update(auth_headers(self._token))
        if resume is not None:
            headers[LAST_EVENT_ID] = str(resume)
        return headers


async def _read_some(response: httpx.Response) -> bytes:
    body = b""
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    return body


def _updates(events: list[SSEEvent]) -> Iterator[Update]:
    """Updates for a run of events: consecutive puts and deletes are batched, in order."""
    changes: list[Change] = []
    for event in events:
        if event.event == EventName.SNAPSHOT:
            if changes:
                yield Update(SourceState.VALID, changes=tuple(changes))
                changes = []
            yield Update(SourceState.VALID, snapshot=_snapshot(_json(event)))
        elif event.event == EventName.PUT:
            changes.append(Change.put(Document.from_wire(_json(event))))
        elif event.event == EventName.DELETE:
            changes.append(_delete(_json(event)))
    if changes:
        yield Update(SourceState.VALID, changes=tuple(changes))


def _json(event: SSEEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.data)
    except ValueError:
        raise ValueError(f"{event.event} event {event.id}: data is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{event.event} event {event.id}: data is not an object")
    return data


def _snapshot(data: dict[str, Any]) -> Snapshot:
    try:
        namespaces = data.get("namespaces")
        return Snapshot(
            revision=int(data["revision"]),
            documents=tuple(Document.from_wire(d) for d in data["items"]),
            namespaces=tuple(str(n) for n in namespaces) if namespaces is not None else None,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"snapshot event: missing or wrong field {exc}") from None


def _delete(data: dict[str, Any]) -> Change:
    try:
        return Change.delete(str(data["namespace"]), str(data["name"]), int(data["revision"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"delete event: missing or wrong field {exc}") from None
