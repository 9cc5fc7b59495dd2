"""LiveTransport: an httpx transport that routes every request by a live `ModelEndpoints`.

Give it to any httpx-based client (the openai SDK, LangChain's `ChatOpenAI`, your own
`httpx.AsyncClient`) and that client follows the live document with no restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random as _random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from configsvc_schemas import MASK, Endpoint, ModelEndpoints

from configsvc_client.live._core import Call, Dispatcher, Sleep
from configsvc_client.live._pools import Pools
from configsvc_client.live._router import LiveRouter, Target
from configsvc_client.live._status import RouterStatus
from configsvc_client.live._timeouts import CLIENT_DEFAULT_TIMEOUTS, caller_timeouts
from configsvc_client.live._types import LiveValue
from configsvc_client.live._upstream import (
    HOP_HEADERS,
    ModelSwap,
    Urls,
    encode_json,
    strip_prefix,
)

log = logging.getLogger("configsvc_client.live")

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""Connection pool limits of each base URL's pool."""

DEFAULT_BASE_PATH = "/v1"
"""The path of the placeholder base URL that clients are given (`http://x.invalid/v1`)."""

TASK_HEADER = "x-configsvc-task"
"""Request header choosing the call's task class (not forwarded)."""

TASK_EXTENSION = "configsvc_task"
"""Request extension choosing the call's task class (as the header does)."""

BODY_EXTENSION = "configsvc_body"
"""Request extension: a function of the `Endpoint` returning the JSON body of each try."""

STREAM_EXTENSION = "configsvc_stream"
"""Request extension: True when the caller reads the answer as a stream."""

RETRY_COUNT_HEADER = "x-stainless-retry-count"
"""Sent by the openai SDK (and other Stainless SDKs): its own retry number."""

PLACEHOLDER_API_KEY = "configsvc-routes-this"
"""The key given to SDKs that want one (`openai_client`): never sent upstream."""

SHOULD_RETRY_HEADER = "x-should-retry"
"""Answer header the openai SDK obeys: `false` stops its own retries of an error."""

_TASK = TASK_HEADER.encode()
_RETRY_COUNT = RETRY_COUNT_HEADER.encode()
_DROPPED = HOP_HEADERS | {_TASK}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OWN_EXTENSIONS = frozenset({"timeout", TASK_EXTENSION, BODY_EXTENSION, STREAM_EXTENSION})
_JSON = b"application/json"
_PLACEHOLDER_AUTH = f"Bearer {PLACEHOLDER_API_KEY}".encode()

Models = LiveValue[ModelEndpoints] | ModelEndpoints | LiveRouter


def as_router(models: Models) -> LiveRouter:
    """`models` itself when it is a router (to share its state), else a new router."""
    return models if isinstance(models, LiveRouter) else LiveRouter(models)


def _is_json(content_type: bytes | None) -> bool:
    return content_type is None or content_type.startswith(_JSON) or b"+json" in content_type


class LiveTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncBaseTransport` that sends each request to an endpoint of a live
    `ModelEndpoints` document.

    Per request: the path less `base_path` is appended to the chosen endpoint's
    `base_url` (query kept); `Authorization` becomes `Bearer <api_key>` when the
    endpoint has a key; a JSON body's `"model"` becomes the endpoint's `model`; the
    endpoint's (or task class's) timeouts, retries, breaker, groups and fallbacks apply
    (see `configsvc_client.live._core`). The task class comes from the header
    `X-Configsvc-Task` (not forwarded). A call is streamed when its JSON body has
    `"stream": true` or the answer is `text/event-stream`; its body is relayed chunk by
    chunk. Other bodies are read whole within the try, so that a broken one is retried.

    A per-request timeout the caller sets (httpx's `timeout` extension: openai's
    `timeout=`) narrows the document's for that call, never widens them; a client's own
    defaults (`client_defaults`) are not taken for a caller's choice.

    `models`: a live value, a fixed document, or a `LiveRouter` to share breakers and
    statistics with other clients. `endpoint`: the endpoint or group to call (None: the
    document's `default`); `fallbacks=False` tries it alone. `transport`, `sleep`,
    `random` and `clock` (wall-clock, for `Retry-After` dates) are for tests; the
    router's `monotonic` clock times breakers and deadlines.
    """

    def __init__(
        self,
        models: Models,
        endpoint: str | None = None,
        *,
        base_path: str = DEFAULT_BASE_PATH,
        fallbacks: bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        client_defaults: tuple[Mapping[str, float | None], ...] = CLIENT_DEFAULT_TIMEOUTS,
        rewrite_model: bool = True,
    ) -> None:
        self.router = as_router(models)
        self.endpoint = endpoint
        self.base_path = base_path.rstrip("/").encode()
        self._fallbacks = fallbacks
        self._limits = limits
        # Built once, here (not on the event loop): loading a CA bundle takes tens of ms.
        self._ssl: ssl.SSLContext | None = None
        if transport is None:
            self._ssl = (
                verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
            )
        self._inner = transport
        self._client_defaults = client_defaults
        self._rewrite_model = rewrite_model
        self._pools = Pools(self._new_pool)
        self._dispatcher = Dispatcher(
            self.router, self._pools, sleep=sleep, random=random, clock=clock
        )
        self._urls = Urls()
        self._patterns: dict[str, re.Pattern[bytes]] = {}
        self._warned: set[str] = set()
        self._closed = False

    def status(self) -> RouterStatus:
        """What the router has seen of each endpoint (see `LiveRouter.status`)."""
        return self.router.status()

    def targets(self) -> list[Target]:
        """The endpoints a call starting now would try, in order."""
        return self.router.targets(self.endpoint, fallbacks=self._fallbacks)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route `request` by the live document; see the class docstring."""
        if self._closed:
            raise RuntimeError("the LiveTransport is closed")
        content = await request.aread()
        extensions = request.extensions
        task: str | None = extensions.get(TASK_EXTENSION)
        retries = content_type = None
        forwarded: list[tuple[bytes, bytes]] = []
        for raw_key, value in request.headers.raw:  # one pass: this runs on every call
            key = raw_key.lower()
            if key in _DROPPED:
                if key == _TASK and task is None:
                    task = value.decode("latin-1")
            elif value != _PLACEHOLDER_AUTH:
                forwarded.append((raw_key, value))
                if key == _RETRY_COUNT:
                    retries = value.decode("latin-1")
                elif key == b"content-type":
                    content_type = value
        if retries is not None and retries != "0":
            self._warn_once(
                "sdk-retries",
                "the client retried a request itself (%s: %s): its retries multiply "
                "configsvc's; give it max_retries=0",
                RETRY_COUNT_HEADER,
                retries,
            )
        body_fn = extensions.get(BODY_EXTENSION)
        parsed: Any = None
        if body_fn is None and content and _is_json(content_type):
            try:
                parsed = json.loads(content)
            except ValueError:
                parsed = None
        streamed = extensions.get(STREAM_EXTENSION)
        if streamed is None:
            streamed = isinstance(parsed, dict) and parsed.get("stream") is True
        build = self._builder(request, forwarded, content, parsed, body_fn)
        call = Call(
            build=build,
            streamed=bool(streamed),
            task=task,
            caller=caller_timeouts(extensions.get("timeout"), self._client_defaults),
            endpoint=self.endpoint,
            fallbacks=self._fallbacks,
        )
        response = await self._dispatcher.send(call)
        if retries is not None and response.status_code >= httpx.codes.BAD_REQUEST:
            response.headers[SHOULD_RETRY_HEADER] = "false"
        return response

    async def aclose(self) -> None:
        """Close every connection pool. Calls still running are not waited for."""
        self._closed = True
        await self._pools.aclose()

    def __repr__(self) -> str:
        return f"LiveTransport(endpoint={self.endpoint!r}, pools={self._pools.base_urls()})"

    # -- one request --------------------------------------------------------------

    def _builder(
        self,
        request: httpx.Request,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        parsed: Any,
        body_fn: Callable[[Endpoint], Any] | None,
    ) -> Callable[[Target, dict[str, float | None]], httpx.Request]:
        rest = strip_prefix(request.url.raw_path, self.base_path)
        method = request.method
        if body_fn is not None and all(k.lower() != b"content-type" for k, _ in headers):
            headers.append((b"Content-Type", _JSON))
        extensions = {k: v for k, v in request.extensions.items() if k not in _OWN_EXTENSIONS}
        swap: ModelSwap | None = None
        if (
            self._rewrite_model
            and isinstance(parsed, dict)
            and isinstance(parsed.get("model"), str)
        ):
            swap = ModelSwap(content, parsed, self._patterns)
        sized = bool(content) or body_fn is not None or method in _BODY_METHODS
        urls = self._urls

        def build(target: Target, timeout: dict[str, float | None]) -> httpx.Request:
            endpoint = target.endpoint
            url, host = urls.get(endpoint.base_url, rest)
            sent = [(b"Host", host), *headers]
            key = endpoint.api_key
            if key == MASK:
                self._warn_once(
                    target.name,
                    "the api_key of endpoint %r is masked (****): the configsvc token needs "
                    "`secrets: true`; sending no Authorization header of its own",
                    target.name,
                )
            elif key:
                sent = [(k, v) for k, v in sent if k.lower() != b"authorization"]
                sent.append((b"Authorization", f"Bearer {key}".encode()))
            if body_fn is not None:
                value = body_fn(endpoint)
                body = b"" if value is None else encode_json(value)
            else:
                body = content if swap is None else swap.body(endpoint.model)
            if sized:
                sent.append((b"Content-Length", str(len(body)).encode()))
            return httpx.Request(
                method,
                url,
                headers=sent,
                stream=httpx.ByteStream(body),
                extensions={**extensions, "timeout": timeout},
            )

        return build

    def _new_pool(self, base_url: str) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        assert self._ssl is not None
        return httpx.AsyncHTTPTransport(verify=self._ssl, limits=self._limits)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
