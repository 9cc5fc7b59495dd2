"""The gateway: an OpenAI-compatible `POST /v1/chat/completions` in front of model servers.

Every request is checked against live configuration, re-read on each call:
- the caller's API key (`AuthKeys` document `<ns>/keys`, scope `chat`) by `LiveKeyring`;
- the caller's rate (`RateLimits` document `<ns>/limits`, limit `chat`, one bucket per
  key id, charged with an estimate of the request's model tokens) by `LiveRateLimiter`;
- where to send it (`ModelEndpoints` document `<ns>/chat-models`: the default endpoint or
  group, its timeouts, retries, breaker and fallbacks, its `model` and `api_key`) by
  `LiveHTTPClient`, i.e. the routing core that `LiveTransport` gives the openai SDK.

A caller may name a task class with `X-Configsvc-Task` (e.g. `classify`, `codegen`): the
document's settings for it apply. Answers carry `X-Gateway-Endpoint` (which endpoint
answered) and `X-Gateway-Attempts` (tries made); a caller using a `retiring` key gets a
`Warning` header. `GET /status` shows what the router has seen of each endpoint (tries,
failures by cause, breaker, latency next to the configured timeouts); `GET /metrics` the
same for Prometheus when `prometheus_client` is installed.

A streamed answer is relayed as it arrives. Until its first byte, a late or broken
stream moves on to the next try (the router does it); one that breaks off or stalls
later ends with an SSE `error` chunk, so the caller can retry (the demo falls back to
`"stream": false`).
"""

# No `from __future__ import annotations`: FastAPI reads the route's annotations at
# runtime, and they name `caller_key`, a local of `create_app`.

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from configsvc_client import ConfigClient
from configsvc_client.kinds import AuthKeys, Endpoint, ModelEndpoints, RateLimits
from configsvc_client.live import (
    ATTEMPTS_EXTENSION,
    ENDPOINT_EXTENSION,
    KeyInfo,
    LiveHTTPClient,
    LiveKeyring,
    LiveMetrics,
    LiveRateLimiter,
    NotConfigured,
)
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

log = logging.getLogger("llm_gateway")

BodyFor = Callable[[Endpoint], dict[str, Any]]
"""The request body for an endpoint (the caller's, with that endpoint's `model`)."""

CHARS_PER_TOKEN = 4
"""Rough prompt-size estimate used to charge the tokens-per-minute budget."""

TASK_HEADER = "X-Configsvc-Task"
"""The caller's task class, passed on to the router."""


@dataclass(frozen=True)
class GatewaySettings:
    """Which documents and entries the gateway follows."""

    namespace: str = "prod"
    models: str = "chat-models"
    limits: str = "limits"
    keys: str = "keys"
    limit: str = "chat"
    scope: str = "chat"
    default_max_tokens: int = 256


def error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": kind, "code": status}}


def estimate_tokens(body: dict[str, Any], default_max_tokens: int) -> int:
    """Prompt characters / 4 plus the completion budget: what a request may cost."""
    prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [])
    completion = body.get("max_tokens") or default_max_tokens
    return prompt // CHARS_PER_TOKEN + int(completion)


def create_app(client: ConfigClient, settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app. It starts and stops `client` with the app (`async with`)."""
    settings = settings or GatewaySettings()
    ns = settings.namespace
    models = client.bind(f"{ns}/{settings.models}", ModelEndpoints)
    limits = client.bind(f"{ns}/{settings.limits}", RateLimits)
    keys = client.bind(f"{ns}/{settings.keys}", AuthKeys)
    http = LiveHTTPClient(models)
    limiter = LiveRateLimiter(limits, settings.limit)
    keyring = LiveKeyring(keys)
    caller_key = keyring.dependency(settings.scope)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client, http:
            yield

    app = FastAPI(title="LLM gateway (configsvc example)", lifespan=lifespan)

    @app.exception_handler(HTTPException)
    async def openai_errors(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 403: "permission_error"}.get(
            exc.status_code, "invalid_request_error"
        )
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail), kind),
            exc.status_code,
            headers=exc.headers,
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        status = client.status
        document = models.document
        return {
            "config": str(status.mode),
            "revision": status.revision,
            "models_version": document.version if document else None,
        }

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(http.status()))

    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:  # pragma: no cover - prometheus_client is optional
        pass
    else:
        registry = CollectorRegistry()
        LiveMetrics(registry).add(http.router, settings.models)

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.post("/v1/chat/completions")
    async def chat_completions(
        request: Request, caller: Annotated[KeyInfo, Depends(caller_key)]
    ) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse(error_body(400, "body must be a JSON object", "bad_request"), 400)
        tokens = estimate_tokens(body, settings.default_max_tokens)
        if not limiter.try_acquire(caller.id, tokens=tokens):
            wait = limiter.wait_time(caller.id, tokens=tokens)
            message = f"rate limit {settings.limit!r} exceeded for key {caller.id!r}"
            return JSONResponse(
                error_body(429, message, "rate_limit_exceeded"),
                429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        headers = {"X-Gateway-Key": caller.id}
        if caller.retiring:
            headers["Warning"] = f'299 - "API key {caller.id} is retiring; use its replacement"'

        def for_endpoint(endpoint: Endpoint) -> dict[str, Any]:
            return {**body, "model": endpoint.model}

        task = request.headers.get(TASK_HEADER)
        if body.get("stream"):
            return await _stream(http, for_endpoint, headers, task)
        return await _complete(http, for_endpoint, headers, task)

    return app


def _upstream_headers(response: httpx.Response, headers: dict[str, str]) -> dict[str, str]:
    return {
        **headers,
        "X-Gateway-Endpoint": str(response.extensions.get(ENDPOINT_EXTENSION, "")),
        "X-Gateway-Attempts": str(response.extensions.get(ATTEMPTS_EXTENSION, "")),
    }


def _failure(exc: Exception) -> JSONResponse:
    """The answer when no endpoint could be reached."""
    if isinstance(exc, NotConfigured):
        return JSONResponse(error_body(503, str(exc), "not_configured"), 503)
    status = 504 if isinstance(exc, httpx.TimeoutException) else 502
    log.warning("every endpoint failed: %r", exc)
    message = f"upstream failed: {type(exc).__name__}: {exc}"
    return JSONResponse(error_body(status, message, "upstream_error"), status)


async def _complete(
    http: LiveHTTPClient, body_for: BodyFor, headers: dict[str, str], task: str | None
) -> Response:
    try:
        upstream = await http.post("/chat/completions", json=body_for, task=task)
    except (httpx.HTTPError, NotConfigured) as exc:
        return _failure(exc)
    return Response(
        upstream.content,
        upstream.status_code,
        headers=_upstream_headers(upstream, headers),
        media_type=upstream.headers.get("content-type", "application/json"),
    )


async def _stream(
    http: LiveHTTPClient, body_for: BodyFor, headers: dict[str, str], task: str | None
) -> Response:
    stack = contextlib.AsyncExitStack()
    try:
        upstream = await stack.enter_async_context(
            http.stream("POST", "/chat/completions", json=body_for, task=task)
        )
    except (httpx.HTTPError, NotConfigured) as exc:
        return _failure(exc)
    out_headers = _upstream_headers(upstream, headers)
    if upstream.status_code != 200 or "text/event-stream" not in upstream.headers.get(
        "content-type", ""
    ):
        async with stack:
            content = await upstream.aread()
        return Response(
            content,
            upstream.status_code,
            headers=out_headers,
            media_type=upstream.headers.get("content-type"),
        )

    async def relay() -> AsyncIterator[bytes]:
        async with stack:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            except httpx.HTTPError as exc:  # StreamInterrupted, LiveTimeout, ...
                # Past its first byte: the caller has part of the answer, so say so.
                log.warning("%s", exc)
                error = error_body(502, str(exc), "stream_interrupted")
                yield f"data: {json.dumps(error)}\n\n".encode()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers=out_headers,
        background=BackgroundTask(stack.aclose),  # if the body is never iterated
    )


def _jsonable(value: Any) -> Any:
    """A status (dataclasses, mappings, enums, pydantic models) as plain JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
