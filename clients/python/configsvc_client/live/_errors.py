"""Exceptions raised by the live helpers.

```
ConfigError                  (configsvc_client) base of every error of the SDK
└── LiveError                base of every error raised by configsvc_client.live
    ├── NotConfigured        the document has no value yet, or lacks the named entry
    ├── CircuitOpen          every endpoint a call could try is skipped: its breaker is open
    │                        (also an httpx.TransportError)
    ├── StreamInterrupted    a response body broke off mid-way (also an httpx.TransportError)
    └── LiveTimeout          a limit of the document ran out: `first_token`, `idle` or
                             `total` (also an httpx.ReadTimeout)
```
Errors of the upstream itself (timeouts, refused connections) are raised as the
`httpx` exceptions they are, once every try and fallback has failed. Being httpx
exceptions too, the live ones reach the openai SDK's callers as `APIConnectionError` and
`APITimeoutError`. No message holds a secret (URLs are given without their query).
"""

from __future__ import annotations

import httpx

from configsvc_client._errors import ConfigError


class LiveError(ConfigError):
    """Base of every error raised by `configsvc_client.live`."""


class NotConfigured(LiveError, LookupError):
    """The live document has no value (not received yet, or deleted), or it does not
    hold the endpoint or entry asked for."""


class CircuitOpen(LiveError, httpx.TransportError):
    """Every endpoint the call could try has an open breaker, so none was tried.

    `endpoints` maps each skipped endpoint to the seconds until its breaker lets a trial
    call through.
    """

    def __init__(self, endpoints: dict[str, float], *, request: httpx.Request | None = None):
        self.endpoints = endpoints
        waits = ", ".join(f"{name!r} (trial in {wait:.1f}s)" for name, wait in endpoints.items())
        httpx.TransportError.__init__(
            self, f"every endpoint's circuit breaker is open: {waits}", request=request
        )


class StreamInterrupted(LiveError, httpx.TransportError):
    """The upstream closed or broke the connection before the body was complete.

    Common with local model servers that crash or restart mid-generation (h11 reports
    `incomplete chunked read`). The message says which endpoint broke and how much
    had arrived; the original error is the `__cause__`.
    """

    def __init__(
        self,
        endpoint: str,
        url: str,
        bytes_received: int,
        chunks_received: int,
        reason: str,
        *,
        request: httpx.Request | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.url = url
        self.bytes_received = bytes_received
        self.chunks_received = chunks_received
        self.reason = reason
        message = (
            f"response from endpoint {endpoint!r} ({url}) broke off after "
            f"{bytes_received} bytes in {chunks_received} chunks: {reason}"
        )
        httpx.TransportError.__init__(self, message, request=request)


class LiveTimeout(LiveError, httpx.ReadTimeout):
    """A time limit of the document ran out.

    `limit` says which: `first_token` (no body byte in time: raised only when no other
    try is left), `idle` (a streamed body paused too long after its first byte) or
    `total` (the whole call's deadline). A stream cut after its first byte says how much
    had arrived, so it is never mistaken for a complete answer.
    """

    def __init__(
        self,
        endpoint: str,
        url: str,
        limit: str,
        seconds: float,
        *,
        bytes_received: int = 0,
        chunks_received: int = 0,
        request: httpx.Request | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.url = url
        self.limit = limit
        self.seconds = seconds
        self.bytes_received = bytes_received
        self.chunks_received = chunks_received
        if limit == "idle":
            what = f"the stream paused longer than timeout.idle ({seconds:g}s)"
        elif limit == "first_token":
            what = f"no body byte within timeout.first_token ({seconds:g}s)"
        else:
            what = f"the call's timeout.{limit} ({seconds:g}s) ran out"
        message = (
            f"endpoint {endpoint!r} ({url}): {what}, after {bytes_received} bytes "
            f"in {chunks_received} chunks"
        )
        httpx.ReadTimeout.__init__(self, message, request=request)
