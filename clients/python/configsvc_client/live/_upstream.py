"""What a routed request becomes for one endpoint: its URL, headers and body.

Built for speed, since it runs on every try: URLs are parsed once per endpoint and path,
a JSON body is re-encoded only when its top-level `"model"` cannot be swapped in place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

MAX_CACHED_URLS = 512
"""URLs kept parsed (endpoint base URL x request path); the cache restarts when full."""

MAX_CACHED_PATTERNS = 64
"""Compiled `"model": <value>` patterns kept (one per model name callers send)."""

HOP_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
"""Headers of the incoming request that are not forwarded (recomputed for the upstream)."""

_JSON_SPACE = rb"[ \t\r\n]*"


def encode_json(value: Any) -> bytes:
    """JSON as httpx sends it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def strip_prefix(raw_path: bytes, prefix: bytes) -> str:
    """The request's path and query less `prefix` (when it starts with it), from "/"."""
    if (
        prefix
        and raw_path.startswith(prefix)
        and raw_path[len(prefix) : len(prefix) + 1]
        in (
            b"",
            b"/",
            b"?",
        )
    ):
        raw_path = raw_path[len(prefix) :]
    rest = raw_path.decode("ascii")
    return rest if rest.startswith("/") else "/" + rest


class Urls:
    """Parsed upstream URLs by (base URL, path), with their `Host` header value."""

    def __init__(self) -> None:
        self._urls: dict[tuple[str, str], tuple[httpx.URL, bytes]] = {}

    def get(self, base_url: str, rest: str) -> tuple[httpx.URL, bytes]:
        key = (base_url, rest)
        found = self._urls.get(key)
        if found is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            url = httpx.URL(base_url.rstrip("/") + rest)
            found = self._urls[key] = (url, url.netloc)
        return found


class ModelSwap:
    """Bodies of one JSON request for each endpoint's `model` (`patterns`: a cache shared
    across requests).

    The top-level `"model"` is replaced in the original bytes when its `"model": <value>`
    occurs exactly once (key order, spacing and every other byte kept); otherwise the
    body is re-encoded.
    """

    __slots__ = ("_bodies", "_content", "_current", "_parsed", "_patterns")

    def __init__(
        self, content: bytes, parsed: dict[str, Any], patterns: dict[str, re.Pattern[bytes]]
    ) -> None:
        self._content = content
        self._parsed = parsed
        self._current: str = parsed["model"]
        self._patterns = patterns
        self._bodies: dict[str, bytes] = {}

    def body(self, model: str) -> bytes:
        if model == self._current:
            return self._content
        found = self._bodies.get(model)
        if found is None:
            found = self._bodies[model] = self._swap(model)
        return found

    def _swap(self, model: str) -> bytes:
        pattern = self._patterns.get(self._current)
        if pattern is None:
            if len(self._patterns) >= MAX_CACHED_PATTERNS:
                self._patterns.clear()
            value = re.escape(json.dumps(self._current).encode())
            pattern = re.compile(rb'"model"' + _JSON_SPACE + b":" + _JSON_SPACE + value)
            self._patterns[self._current] = pattern
        replacement = b'"model":' + json.dumps(model).encode()
        swapped, count = pattern.subn(lambda _: replacement, self._content, count=2)
        if count == 1:
            return swapped
        return encode_json({**self._parsed, "model": model})
