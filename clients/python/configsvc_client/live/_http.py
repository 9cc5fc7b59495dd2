"""LiveHTTPClient: an httpx client that follows a live `ModelEndpoints` document."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random as _random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from configsvc_schemas import MASK, Endpoint, ModelEndpoints

from configsvc_client.live._errors import NotConfigured, StreamInterrupted
from configsvc_client.live._types import Fixed, LiveValue

log = logging.getLogger("configsvc_client.live")

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""Connection pool limits of each base URL's pool."""

ENDPOINT_EXTENSION = "configsvc_endpoint"
"""Key in `response.extensions` naming the endpoint that answered."""

ATTEMPTS_EXTENSION = "configsvc_attempts"
"""Key in `response.extensions` counting the tries made, over all endpoints."""

RETRY_STATUS = 429
"""Retried like a 5xx, honouring its `Retry-After`."""

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    StreamInterrupted,
)
"""Transport errors worth another try: timeouts, refused or reset connections, a peer
that closed before answering, and a body that broke off (non-streaming calls only)."""

JsonBody = Any
"""A JSON-serialisable body, or a function of the `Endpoint` that returns one (so that
a fallback can be sent its own `model`)."""

Sleep = Callable[[float], Awaitable[None]]


def is_retryable_status(status_code: int) -> bool:
    """429 and every 5xx are retried."""
    return status_code == RETRY_STATUS or 500 <= status_code <= 599


def backoff_bound(retry: int, initial: float, cap: float) -> float:
    """Upper bound of the delay before retry number `retry` (1 = the first retry)."""
    return min(cap, initial * 2.0 ** min(retry - 1, 62))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def endpoint_timeout(endpoint: Endpoint) -> httpx.Timeout:
    """The endpoint's connect/read/write/pool timeouts as an `httpx.Timeout`."""
    t = endpoint.timeout
    return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint a call may try: its name in the document and its settings."""

    name: str
    endpoint: Endpoint


@dataclass(eq=False)
class _Pool:
    """The `httpx.AsyncClient` of one base URL and the calls currently using it."""

    base_url: str
    client: httpx.AsyncClient
    in_flight: int = 0
    retired: bool = False
    closed: bool = False


@dataclass(slots=True)
class _Call:
    """What one call sends: fixed at the call's start."""

    method: str
    path: str
    params: Any
    headers: Mapping[str, str] | None
    content: bytes | str | None
    json: JsonBody
    targets: list[Target]
    tries: int = 0
    failures: list[str] = field(default_factory=list)


class _CountingStream(httpx.AsyncByteStream):
    """Wraps a response body: counts what arrives, turns a mid-body break into
    `StreamInterrupted`."""

    def __init__(self, inner: httpx.AsyncByteStream, target: Target, request: httpx.Request):
        self._inner = inner
        self._target = target
        self._request = request
        self.bytes_received = 0
        self.chunks_received = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self.bytes_received += len(chunk)
                self.chunks_received += 1
                yield chunk
        except (httpx.RemoteProtocolError, httpx.NetworkError) as exc:
            raise StreamInterrupted(
                self._target.name,
                str(self._request.url.copy_with(query=None)),
                self.bytes_received,
                self.chunks_received,
                str(exc) or type(exc).__name__,
                request=self._request,
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _read(response: httpx.Response) -> None:
    """Read the body; on failure close the response and re-raise."""
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise


class LiveHTTPClient:
    """An async HTTP client for one endpoint of a live `ModelEndpoints` document.

    Each call reads the document once, at its start, and keeps those settings to its
    end: URL = the endpoint's `base_url` + `path`; its connect/read/write/pool timeouts;
    `Authorization: Bearer <api_key>` when the endpoint has a key; up to
    `retry.attempts` tries in all, with exponential backoff (full jitter when
    `retry.jitter`) after a connection error, a timeout, a 429 (never sooner than its
    `Retry-After`) or a 5xx; then the document's `fallbacks`, in order, each with its
    own policy. When every try fails, the last outcome is returned (a response) or
    raised (the httpx exception, with a note listing every failed try).
    `verify` is httpx's (True, a CA bundle path, an `ssl.SSLContext`, or False).

    Connections are pooled per base URL and reused across calls; a pool whose base URL
    has left the document is closed once its in-flight calls end. Use one instance from
    one event loop; close it with `aclose()` or `async with`.

    `models` is a live value (e.g. `client.bind("prod/chat-models", ModelEndpoints)`) or
    a fixed `ModelEndpoints`. `endpoint` names the endpoint to call; None follows the
    document's `default`. `fallbacks=False` tries that endpoint alone. `transport`,
    `sleep`, `random` and `clock` (wall-clock seconds, for `Retry-After` dates) are for
    tests.
    """

    def __init__(
        self,
        models: LiveValue[ModelEndpoints] | ModelEndpoints,
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
        self._models: LiveValue[ModelEndpoints] = (
            Fixed(models) if isinstance(models, ModelEndpoints) else models
        )
        self._endpoint = endpoint
        self._fallbacks = fallbacks
        self._headers = dict(headers or {})
        self._limits = limits
        self._transport = transport
        # Built once, here: building one per pool would block the event loop each time.
        self._verify = verify if transport is not None else httpx.create_ssl_context(verify)
        self._sleep = sleep
        self._random = random
        self._clock = clock
        self._pools: dict[str, _Pool] = {}
        self._masked_warned: set[str] = set()
        self._closed = False

    # -- public API ---------------------------------------------------------------

    def targets(self) -> list[Target]:
        """The endpoints a call starting now would try, in order.

        Raises `NotConfigured` when the document has no value or lacks the endpoint.
        """
        return self._targets(self._document())

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: JsonBody = None,
    ) -> httpx.Response:
        """Send a request with retries and fallbacks; the response body is read."""
        call = await self._start(method, path, params, headers, content, json)
        response, pool = await self._send(call, stream=False)
        await self._release(pool)
        return response

    async def get(
        self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """`request("GET", path, ...)`."""
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: JsonBody = None,
    ) -> httpx.Response:
        """`request("POST", path, ...)`."""
        return await self.request(
            "POST", path, params=params, headers=headers, content=content, json=json
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
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the response with its body unread.

        Retries and fallbacks apply until a response with a final status arrives; the
        body is then the caller's to read (`aiter_lines()`, ...). If it breaks off,
        reading raises `StreamInterrupted`, which says how much had arrived.
        """
        call = await self._start(method, path, params, headers, content, json)
        response, pool = await self._send(call, stream=True)
        try:
            yield response
        finally:
            try:
                await response.aclose()
            finally:
                await self._release(pool)

    async def aclose(self) -> None:
        """Close every connection pool. Calls still running are not waited for."""
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.closed = True
            await pool.client.aclose()

    async def __aenter__(self) -> LiveHTTPClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LiveHTTPClient(endpoint={self._endpoint!r}, pools={sorted(self._pools)})"

    # -- one call -----------------------------------------------------------------

    def _document(self) -> ModelEndpoints:
        document = self._models.value
        if document is None:
            raise NotConfigured("the ModelEndpoints document has no value (yet)")
        return document

    def _targets(self, document: ModelEndpoints) -> list[Target]:
        first = self._endpoint if self._endpoint is not None else document.default
        if first not in document.endpoints:
            raise NotConfigured(f"the ModelEndpoints document has no endpoint {first!r}")
        names = [first]
        if self._fallbacks:
            names += [name for name in document.fallbacks if name not in names]
        return [Target(name, document.endpoints[name]) for name in names]

    async def _start(
        self,
        method: str,
        path: str,
        params: Any,
        headers: Mapping[str, str] | None,
        content: bytes | str | None,
        json: JsonBody,
    ) -> _Call:
        if self._closed:
            raise RuntimeError("the LiveHTTPClient is closed")
        document = self._document()
        targets = self._targets(document)
        await self._retire_pools({e.base_url for e in document.endpoints.values()})
        return _Call(method, path, params, headers, content, json, targets)

    async def _send(self, call: _Call, *, stream: bool) -> tuple[httpx.Response, _Pool]:
        """Try the targets in order; returns the final response and the pool it holds."""
        last_target = call.targets[-1]
        for target in call.targets:
            retry = target.endpoint.retry
            for attempt in range(1, retry.attempts + 1):
                final = target is last_target and attempt == retry.attempts
                pool = self._acquire(target.endpoint.base_url)
                call.tries += 1
                delay: float | None
                try:
                    response = await self._try(call, target, pool)
                    retryable = is_retryable_status(response.status_code)
                    delay = self._delay_after(response, target, attempt) if retryable else 0.0
                    done = not retryable or final or (delay is None and target is last_target)
                    if done and not stream:
                        await _read(response)
                except RETRYABLE_ERRORS as exc:
                    await self._release(pool)
                    call.failures.append(f"{target.name} try {attempt}: {exc!r}")
                    if final:
                        exc.add_note("LiveHTTPClient tries: " + "; ".join(call.failures))
                        raise
                    delay = self._backoff(target, attempt)
                except BaseException:
                    await self._release(pool)
                    raise
                else:
                    if done:
                        return response, pool
                    await response.aclose()
                    await self._release(pool)
                    call.failures.append(f"{target.name} try {attempt}: {response.status_code}")
                if attempt == retry.attempts or delay is None:
                    log.warning(
                        "endpoint %r failed (%s); trying the next fallback",
                        target.name,
                        call.failures[-1],
                    )
                    break
                log.info(
                    "endpoint %r failed (%s); retrying in %.2fs",
                    target.name,
                    call.failures[-1],
                    delay,
                )
                await self._sleep(delay)
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    async def _try(self, call: _Call, target: Target, pool: _Pool) -> httpx.Response:
        """One try: send and receive the status and headers (the body is left unread)."""
        endpoint = target.endpoint
        body = call.json(endpoint) if callable(call.json) else call.json
        headers = httpx.Headers(self._headers)
        headers.update(call.headers or {})
        if endpoint.api_key == MASK:
            self._warn_masked(target.name)
        elif endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        request = pool.client.build_request(
            call.method,
            call.path,
            params=call.params,
            headers=headers,
            content=call.content,
            json=body,
            timeout=endpoint_timeout(endpoint),
        )
        response = await pool.client.send(request, stream=True)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CountingStream(response.stream, target, request)
        response.extensions = {
            **response.extensions,
            ENDPOINT_EXTENSION: target.name,
            ATTEMPTS_EXTENSION: call.tries,
        }
        return response

    def _backoff(self, target: Target, attempt: int) -> float:
        retry = target.endpoint.retry
        bound = backoff_bound(attempt, retry.backoff_initial, retry.backoff_max)
        return self._random() * bound if retry.jitter else bound

    def _delay_after(self, response: httpx.Response, target: Target, attempt: int) -> float | None:
        """The wait before the next try; None when `Retry-After` asks for longer than
        the endpoint's `backoff_max` (then the next fallback is tried at once)."""
        wait = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        if wait is None:
            return self._backoff(target, attempt)
        if wait > target.endpoint.retry.backoff_max:
            return None
        return wait

    def _warn_masked(self, name: str) -> None:
        if name not in self._masked_warned:
            self._masked_warned.add(name)
            log.warning(
                "the api_key of endpoint %r is masked (****): the configsvc token needs "
                "`secrets: true`; sending no Authorization header",
                name,
            )

    # -- pools --------------------------------------------------------------------

    def _acquire(self, base_url: str) -> _Pool:
        pool = self._pools.get(base_url)
        if pool is None:
            client = httpx.AsyncClient(
                base_url=base_url,
                limits=self._limits,
                verify=self._verify,
                transport=self._transport,
            )
            pool = self._pools[base_url] = _Pool(base_url, client)
        pool.in_flight += 1
        return pool

    async def _release(self, pool: _Pool) -> None:
        pool.in_flight -= 1
        if pool.retired and pool.in_flight == 0 and not pool.closed:
            pool.closed = True
            await pool.client.aclose()

    async def _retire_pools(self, wanted: set[str]) -> None:
        """Forget the pools of base URLs no longer in the document; close idle ones now
        and busy ones when their last call ends."""
        for base_url in [url for url in self._pools if url not in wanted]:
            pool = self._pools.pop(base_url)
            pool.retired = True
            log.info("base URL %s left the document; closing its connections", base_url)
            if pool.in_flight == 0:
                pool.closed = True
                await pool.client.aclose()
