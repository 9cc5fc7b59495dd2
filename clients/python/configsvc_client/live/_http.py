"""LiveHTTPClient: an async HTTP client for a live `ModelEndpoints` document, built on
`LiveTransport` (one routing core for both)."""

from __future__ import annotations

import asyncio
import contextlib
import random as _random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from configsvc_client.live._core import Sleep
from configsvc_client.live._router import LiveRouter, Target
from configsvc_client.live._status import RouterStatus
from configsvc_client.live._transport import (
    BODY_EXTENSION,
    DEFAULT_LIMITS,
    STREAM_EXTENSION,
    TASK_EXTENSION,
    LiveTransport,
    Models,
)

PLACEHOLDER_URL = "http://configsvc.invalid"
"""The base URL the client's requests carry before the transport routes them."""

JsonBody = Any
"""A JSON-serialisable body, or a function of the `Endpoint` that returns one (so that
a fallback can be sent its own `model`)."""


class LiveHTTPClient:
    """An async HTTP client for one endpoint (or group) of a live `ModelEndpoints` document.

    Each call reads the document once, at its start, and keeps those settings to its
    end: URL = the endpoint's `base_url` + `path`; its timeouts (or those of the call's
    `task` class); `Authorization: Bearer <api_key>` when the endpoint has a key; up to
    `retry.attempts` tries in all, with exponential backoff (full jitter when
    `retry.jitter`) after a connection error, a timeout, a 429 (never sooner than its
    `Retry-After`) or a 5xx (or the statuses of `retry.on_status`); then the document's
    `fallbacks`, in order, each with its own policy; breakers, groups and `timeout.total`
    as `LiveTransport` applies them. When every try fails, the last outcome is returned
    (a response) or raised (the httpx exception, with a note listing every failed try).
    `verify` is httpx's (True, a CA bundle path, an `ssl.SSLContext`, or False).

    Connections are pooled per base URL and reused across calls; a pool whose base URL
    has left the document is closed once its in-flight calls end. Use one instance from
    one event loop; close it with `aclose()` or `async with`.

    `models` is a live value (e.g. `client.bind("prod/chat-models", ModelEndpoints)`), a
    fixed `ModelEndpoints`, or a `LiveRouter` shared with other clients. `endpoint` names
    the endpoint or group to call; None follows the document's `default`.
    `fallbacks=False` tries that endpoint alone. `transport`, `sleep`, `random` and
    `clock` (wall-clock seconds, for `Retry-After` dates) are for tests.
    """

    def __init__(
        self,
        models: Models,
        endpoint: str | None = None,
        *,
        fallbacks: bool = True,
        headers: Mapping[str, str] | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = LiveTransport(
            models,
            endpoint,
            base_path="",
            fallbacks=fallbacks,
            limits=limits,
            verify=verify,
            transport=transport,
            sleep=sleep,
            random=random,
            clock=clock,
            rewrite_model=False,
        )
        # timeout=None: the document's timeouts apply (a client-wide one would narrow them).
        self._client = httpx.AsyncClient(
            base_url=PLACEHOLDER_URL,
            headers=headers,
            timeout=None,  # noqa: S113
            transport=self.transport,
        )
        self._endpoint = endpoint

    # -- public API ---------------------------------------------------------------

    @property
    def router(self) -> LiveRouter:
        """The `LiveRouter` (breakers, statistics), to share or to read its status."""
        return self.transport.router

    def status(self) -> RouterStatus:
        """What this client's router has seen of each endpoint."""
        return self.transport.status()

    def targets(self) -> list[Target]:
        """The endpoints a call starting now would try, in order.

        Raises `NotConfigured` when the document has no value or lacks the endpoint.
        """
        return self.transport.targets()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: JsonBody = None,
        task: str | None = None,
    ) -> httpx.Response:
        """Send a request with retries and fallbacks; the response body is read."""
        request = self._build(method, path, params, headers, content, json, task, stream=False)
        return await self._client.send(request)

    async def get(
        self,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        task: str | None = None,
    ) -> httpx.Response:
        """`request("GET", path, ...)`."""
        return await self.request("GET", path, params=params, headers=headers, task=task)

    async def post(
        self,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: JsonBody = None,
        task: str | None = None,
    ) -> httpx.Response:
        """`request("POST", path, ...)`."""
        return await self.request(
            "POST", path, params=params, headers=headers, content=content, json=json, task=task
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: JsonBody = None,
        task: str | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the response with its body unread.

        Retries and fallbacks apply until a response with a final status arrives and, for
        a successful one, its first body byte (so that a stream that stays silent past
        `first_token`, or breaks before its first byte, moves on to the next try). The
        body is then the caller's to read (`aiter_lines()`, ...). If it breaks off,
        reading raises `StreamInterrupted`; a pause longer than `idle`, `LiveTimeout`.
        """
        request = self._build(method, path, params, headers, content, json, task, stream=True)
        response = await self._client.send(request, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close every connection pool. Calls still running are not waited for."""
        await self._client.aclose()

    async def __aenter__(self) -> LiveHTTPClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LiveHTTPClient(endpoint={self._endpoint!r}, transport={self.transport!r})"

    # -- one call -----------------------------------------------------------------

    def _build(
        self,
        method: str,
        path: str,
        params: Any,
        headers: Mapping[str, str] | None,
        content: bytes | str | None,
        json: JsonBody,
        task: str | None,
        *,
        stream: bool,
    ) -> httpx.Request:
        if self._client.is_closed:
            raise RuntimeError("the LiveHTTPClient is closed")
        extensions: dict[str, Any] = {STREAM_EXTENSION: True} if stream else {}
        if task is not None:
            extensions[TASK_EXTENSION] = task
        if callable(json):
            extensions[BODY_EXTENSION] = json
            json = None
        return self._client.build_request(
            method,
            path,
            params=params,
            headers=headers,
            content=content,
            json=json,
            extensions=extensions,
        )
