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
from configsvc.cli._hints import (
    hint_for_not_found,
    no_token_message,
    rejected_token_hint,
    unreachable_hint,
    url_origin,
)
from configsvc.cli._options import Target, TokenFile

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
        url_source: str = "--url",
        token_file: TokenFile | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.token_source = token_source
        self.url_source = url_source
        self.token_file = token_file
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
            raise self._invalid_url(exc) from None

    @classmethod
    def to(cls, target: Target) -> Api:
        """A connection to `target` (its URL and token, and where each came from)."""
        return cls(
            target.url,
            target.token,
            token_source=target.token_source,
            ca=target.ca,
            url_source=target.url_source,
            token_file=target.token_file,
        )

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
        """One line for a request that got no answer: what happened and what to do."""
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return self._invalid_url(exc)
        hint = unreachable_hint(exc, self.url_source)
        return CliError(f"{self.describe_failure(exc)}; {hint}")

    def describe_failure(self, exc: httpx.HTTPError) -> str:
        """What happened to a request that got no answer, in a few words (no advice)."""
        where = f"{self.url}{url_origin(self.url_source)}"
        if isinstance(exc, httpx.ConnectError):
            return f"cannot reach the service at {where}: {_reason(exc)}"
        if isinstance(exc, httpx.TimeoutException):
            return f"the service at {where} did not answer in time ({_reason(exc)})"
        return f"request to {where} failed: {_reason(exc)}"

    def _invalid_url(self, exc: Exception) -> CliError:
        return CliError(
            f"invalid service URL {self.url!r}{url_origin(self.url_source)}: "
            f"{str(exc).rstrip('.')}; give one such as http://127.0.0.1:8080"
        )

    def service_error(self, response: httpx.Response) -> ServiceError:
        """The error body of `response` as a `ServiceError` (also for non-JSON answers)."""
        status = response.status_code
        try:
            error = response.json()["error"]
            code = str(error.get("code", "error"))
            reason = str(error.get("message", "")) or response.reason_phrase
            details = tuple(FieldError.from_json(d) for d in error.get("details") or [])
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._foreign_answer(response)
        if status == httpx.codes.UNAUTHORIZED:
            if not self.token:
                reason = no_token_message(self.url, self.token_file)
            else:
                reason += f" ({self._token_origin()}, sent to {self.url}); " + rejected_token_hint(
                    self.token_source, self.token_file
                )
        elif status == httpx.codes.NOT_FOUND:
            hint = hint_for_not_found(response.request.url.path, reason)
            reason += f"; {hint}" if hint else ""
        return ServiceError(status, code, reason, details)

    def _token_origin(self) -> str:
        if self.token_file is not None:
            return f"the admin token of {self.token_file.path}"
        return f"token from {self.token_source}"

    def _foreign_answer(self, response: httpx.Response) -> ServiceError:
        """An error answer that is not in configsvc's shape: something else answers there
        (another server, a proxy), or a configsvc too old for this path."""
        text = " ".join(response.text.split())[:MAX_BODY_IN_MESSAGE]
        reason = (
            f"{response.reason_phrase or 'an error'} from {self.url}, not in configsvc's "
            f"error format{f' ({text})' if text else ''}; check that the URL"
            f"{url_origin(self.url_source)} is the configsvc service"
        )
        return ServiceError(response.status_code, "error", reason)


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
