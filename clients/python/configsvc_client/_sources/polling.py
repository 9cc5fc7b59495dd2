"""PollingSource: `GET /v1/configs/{ns}` with `If-None-Match`, every `poll_interval`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from configsvc_client._options import ClientOptions
from configsvc_client._sources._wire import (
    Endpoints,
    auth_headers,
    error_from_exception,
    error_from_status,
)
from configsvc_client._types import (
    Document,
    ResumePoint,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Update,
)

CONFIGS_PATH = "/v1/configs/"


class PollingSource:
    """Polls each namespace in turn; a changed one yields a snapshot of that namespace.

    A round in which every namespace answered (200 or 304) ends with a bare VALID. The
    first round starts at once when the client has nothing yet, otherwise after a
    jittered fraction of `poll_interval` (many clients dropped together do not poll
    together). ETags survive between activations, so a poll after a stream outage
    costs a 304 when nothing changed. 401/403 yield OFF and slow polls to
    `options.auth_retry_interval`.
    """

    name = "polling"

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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._endpoints = Endpoints(urls)
        self._namespaces = tuple(namespaces)
        self._token = token
        self._identity = dict(identity or {})
        """Headers naming this client (instance id, labels): the service may choose by them."""
        self._options = options
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep
        self._etags: dict[str, str] = {}
        self._timeout = httpx.Timeout(
            connect=options.connect_timeout,
            read=options.read_timeout,
            write=options.read_timeout,
            pool=options.connect_timeout,
        )

    async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
        interval = self._options.poll_interval
        if since() is not None:
            await self._sleep(self._rng.uniform(0, interval))
        while True:
            error: SourceErrorInfo | None = None
            for namespace in self._namespaces:
                url = self._endpoints.current
                try:
                    response = await self._http.get(
                        f"{url}{CONFIGS_PATH}{namespace}",
                        headers=self._headers(namespace),
                        timeout=self._timeout,
                    )
                except httpx.HTTPError as exc:
                    error = error_from_exception(exc, url)
                    break
                if response.status_code == httpx.codes.NOT_MODIFIED:
                    continue
                if response.status_code != httpx.codes.OK:
                    error = error_from_status(response.status_code, response.content)
                    break
                try:
                    snapshot = _snapshot(namespace, response.json())
                except ValueError as exc:
                    error = SourceErrorInfo("protocol_error", f"{url}: {exc}")
                    break
                yield Update(SourceState.VALID, snapshot=snapshot)
                etag = response.headers.get("etag")
                if etag:
                    self._etags[namespace] = etag
            if error is None:
                yield Update(SourceState.VALID)
                await self._sleep(interval)
            else:
                self._endpoints.failed()
                state = SourceState.OFF if error.permanent else SourceState.INTERRUPTED
                yield Update(state, error=error)
                retry = self._options.auth_retry_interval if error.permanent else interval
                await self._sleep(retry)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client is shared and closed by its owner."""

    def _headers(self, namespace: str) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._identity, **auth_headers(self._token)}
        etag = self._etags.get(namespace)
        if etag:
            headers["If-None-Match"] = etag
        return headers


def _snapshot(namespace: str, body: Any) -> Snapshot:
    try:
        documents = tuple(Document.from_wire(d) for d in body["items"])
        return Snapshot(int(body["revision"]), documents, (namespace,))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"namespace listing: missing or wrong field {exc}") from None
