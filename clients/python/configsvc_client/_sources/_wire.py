"""What the HTTP sources share: URLs with failover, headers, and errors from answers."""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx
from configsvc_schemas.wire import error_message

from configsvc_client._types import SourceErrorInfo

MAX_ERROR_BODY = 4096
"""Bytes of an error answer read to find its message."""


class Endpoints:
    """The service URLs in order of preference; a failure moves to the next one."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("at least one service URL is needed")
        self._urls = tuple(urls)
        self._index = 0

    @property
    def current(self) -> str:
        return self._urls[self._index]

    def failed(self) -> None:
        """The current URL did not answer well: use the next one next time."""
        self._index = (self._index + 1) % len(self._urls)


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def error_from_status(status: int, body: bytes = b"") -> SourceErrorInfo:
    """The error an HTTP answer other than 200/304 means; 401 and 403 are permanent."""
    if status == httpx.codes.UNAUTHORIZED:
        return SourceErrorInfo("unauthorized", permanent=True)
    if status == httpx.codes.FORBIDDEN:
        return SourceErrorInfo("forbidden", permanent=True)
    message = f"HTTP {status}"
    service_message = _service_message(body)
    if service_message:
        message = f"{message}: {service_message}"
    return SourceErrorInfo("http_error", message)


def _service_message(body: bytes) -> str | None:
    try:
        return error_message(json.loads(body[:MAX_ERROR_BODY]))
    except ValueError:
        return None


def error_from_exception(exc: Exception, url: str) -> SourceErrorInfo:
    """The error a failed request means (never permanent)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return SourceErrorInfo("unreachable", f"{url}: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return SourceErrorInfo("timeout", f"{url}: {type(exc).__name__}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return SourceErrorInfo("disconnected", f"{url}: {exc or type(exc).__name__}")
    return SourceErrorInfo("http_error", f"{url}: {type(exc).__name__}: {exc}")
