"""The service's REST API as the CLI uses it: JSON in and out, every failure a `CliError`."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from configsvc.cli._errors import CliError, FieldError, ServiceError

DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_BODY_IN_MESSAGE = 200
SUCCESS = (200, 201, 204)

Params = Mapping[str, str | int | bool | list[str]]


def doc_path(namespace: str, name: str, *rest: str | int) -> str:
    """`/v1/configs/{ns}/{name}[/rest…]`, each part URL-quoted."""
    parts = [namespace, name, *(str(part) for part in rest)]
    return "/v1/configs/" + "/".join(quote(part, safe="") for part in parts)


class Api:
    """A connection to one service with one token (or none); `ca` is the CA file to trust
    for an `https://` URL (None: the system's CA bundle)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        token_source: str = "--token",  # noqa: S107 - a flag name
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        ca: Path | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.token_source = token_source
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._client = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=timeout,
                transport=transport,
                verify=_tls_context(self.url, ca),
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise CliError(f"invalid service URL {url!r}: {exc}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer of a 2xx; any other answer or a transport failure raises `CliError`."""
        try:
            response = self._client.request(method, path, params=params, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code not in SUCCESS:
            raise self.service_error(response)
        return response

    def get(self, path: str, params: Params | None = None) -> Any:
        """The JSON answer of a GET."""
        return _json(self.request("GET", path, params=params))

    def get_optional(self, path: str) -> Any | None:
        """The JSON answer of a GET, or None when the service answers 404."""
        try:
            return self.get(path)
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise

    @contextmanager
    def stream(
        self,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed GET whose status is 2xx (else `ServiceError`); transport errors pass."""
        request = self._client.build_request(
            "GET", path, params=params, headers=headers, timeout=timeout or self._client.timeout
        )
        response = self._client.send(request, stream=True)
        try:
            if response.status_code not in SUCCESS:
                response.read()
                raise self.service_error(response)
            yield response
        finally:
            response.close()

    def upload(
        self,
        path: str,
        content: Iterable[bytes],
        *,
        params: Params | None = None,
        content_type: str,
    ) -> Any:
        """POST `content` as it is read (a large file), with no read timeout; the JSON answer
        of a 2xx, else `ServiceError`."""
        headers = {"Content-Type": content_type}
        try:
            response = self._client.post(
                path,
                content=content,
                params=params,
                headers=headers,
                timeout=httpx.Timeout(self._client.timeout.connect, read=None),
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code not in SUCCESS:
            raise self.service_error(response)
        return _json(response)

    def transport_error(self, exc: httpx.HTTPError) -> CliError:
        """One line for a request that got no answer."""
        if isinstance(exc, httpx.ConnectError):
            return CliError(f"cannot reach the service at {self.url}: {_reason(exc)}")
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"the service at {self.url} did not answer in time ({_reason(exc)})")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return CliError(f"invalid service URL {self.url!r}: {exc}")
        return CliError(f"request to {self.url} failed: {_reason(exc)}")

    def service_error(self, response: httpx.Response) -> ServiceError:
        """The error body of `response` as a `ServiceError` (also for non-JSON answers)."""
        status = response.status_code
        try:
            error = response.json()["error"]
            code = str(error.get("code", "error"))
            reason = str(error.get("message", "")) or response.reason_phrase
            details = tuple(FieldError.from_json(d) for d in error.get("details") or [])
        except (ValueError, KeyError, TypeError, AttributeError):
            text = " ".join(response.text.split())[:MAX_BODY_IN_MESSAGE]
            return ServiceError(status, "error", text or response.reason_phrase)
        if status == 401:
            reason += (
                "; no token was given (use --token or CONFIGSVC_TOKEN)"
                if not self.token
                else f" (token from {self.token_source})"
            )
        return ServiceError(status, code, reason, details)


def _tls_context(url: str, ca: Path | None = None) -> ssl.SSLContext | bool:
    """For https, certificates checked against `ca` (else as httpx does: the system's CA
    bundle); for plain http, a context that trusts nothing, since it is never used
    (loading the CA bundle costs a third of a second)."""
    if not url.lower().startswith("https:"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise CliError(f"cannot load the CA file {ca} (--ca or CONFIGSVC_CA): {reason}") from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except json.JSONDecodeError:
        raise CliError(f"the service answered {response.status_code} with no JSON") from None


def _reason(exc: httpx.HTTPError) -> str:
    """The innermost cause in a few words, e.g. `connection refused`."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or str(exc) or type(exc).__name__
    if "]" in text and text.startswith("[Errno"):
        text = text.split("]", 1)[1].strip()
    return text[:1].lower() + text[1:]
