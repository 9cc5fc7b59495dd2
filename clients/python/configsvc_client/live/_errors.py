"""Exceptions raised by the live helpers.

```
ConfigError                  (configsvc_client) base of every error of the SDK
└── LiveError                base of every error raised by configsvc_client.live
    ├── NotConfigured        the document has no value yet, or lacks the named entry
    └── StreamInterrupted    a response body broke off mid-way (also an httpx.TransportError)
```
Errors of the upstream itself (timeouts, refused connections) are raised as the
`httpx` exceptions they are, once every try and fallback has failed.
"""

from __future__ import annotations

import httpx

from configsvc_client._errors import ConfigError


class LiveError(ConfigError):
    """Base of every error raised by `configsvc_client.live`."""


class NotConfigured(LiveError, LookupError):
    """The live document has no value (not received yet, or deleted), or it does not
    hold the endpoint or entry asked for."""


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
