"""Helpers of the bad-input suite: raw HTTP, the contract's error shape, the stored state."""

from __future__ import annotations

import base64
import copy
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from configsvc.embedded.process import EtcdProcess

MARKER = "sk-MARKER-7f3a9c1e5b"
"""A secret value that must never be seen outside clear answers to `secrets` tokens."""

MAX_BODY = 512 * 1024

RATE_SPEC: dict[str, Any] = {
    "limits": {"chat": {"requests_per_second": 5, "burst": 10, "tokens_per_minute": 200000}}
}


def models_spec(secret: str = MARKER, read: float = 600) -> dict[str, Any]:
    """A valid ModelEndpoints spec whose api keys hold `secret`."""
    return {
        "default": "local-34b",
        "fallbacks": ["hosted"],
        "endpoints": {
            "local-34b": {
                "base_url": "http://127.0.0.1:1234/v1",
                "model": "codebooga-34b",
                "api_key": f"{secret}-local",
                "timeout": {"connect": 5, "read": read},
            },
            "hosted": {
                "base_url": "https://api.example.com/v1",
                "model": "big-model",
                "api_key": f"{secret}-hosted",
            },
        },
    }


def rate_spec(rps: float = 5) -> dict[str, Any]:
    spec = copy.deepcopy(RATE_SPEC)
    spec["limits"]["chat"]["requests_per_second"] = rps
    return spec


def rate_body(rps: float = 5) -> bytes:
    return json.dumps({"kind": "RateLimits", "spec": rate_spec(rps)}).encode()


# ---- the contract's error shape ---------------------------------------------------------


def assert_error_shape(response: httpx.Response | RawResponse, status: int | None = None) -> str:
    """Assert an error (a 4xx unless `status` says otherwise) in the contract's shape
    `{"error": {"code", "message", "details"}}`; its code."""
    if status is not None:
        assert response.status_code == status, (response.status_code, _text(response))
    else:
        assert 400 <= response.status_code < 500, (response.status_code, _text(response))
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (content_type, _text(response))
    payload = json.loads(response.content)
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, payload
    assert isinstance(error["code"], str) and error["code"], payload
    assert isinstance(error["message"], str) and error["message"], payload
    assert isinstance(error["details"], list), payload
    code: str = error["code"]
    return code


def _text(response: httpx.Response | RawResponse) -> str:
    return response.content[:500].decode("utf-8", "replace")


# ---- raw HTTP ---------------------------------------------------------------------------


@dataclass
class RawResponse:
    """A response read off a socket: status, lower-cased headers, body (de-chunked)."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    closed: bool = False
    """The server closed the connection without an answer."""

    def json(self) -> Any:
        return json.loads(self.content)


def raw_request(url: str, data: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send `data` as is to the service at `url` and read one response."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


def read_response(sock: socket.socket) -> RawResponse:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return RawResponse(0, {}, buffer, closed=True)
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return RawResponse(status, headers, rest[:length])
    if headers.get("transfer-encoding") == "chunked":
        return RawResponse(status, headers, _dechunk(sock, rest))
    return RawResponse(status, headers, rest)


def _dechunk(sock: socket.socket, rest: bytes) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body += rest[:size]
        rest = rest[size + 2 :]


def open_stream(url: str, token: str, query: str, *, rcvbuf: int | None = None) -> socket.socket:
    """A watch stream on a raw socket, its `200` head read; the caller reads on or closes it.

    (Closing a raw socket ends the stream at once; an httpx stream being read by another
    thread is not closed by `close()` until that read returns.)"""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    request = request_bytes("GET", f"/v1/watch?{query}", token=token)
    sock.sendall(request.replace(b"Connection: close\r\n", b""))
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        assert byte, head
        head += byte
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def request_bytes(
    method: str,
    target: str,
    *,
    token: str | None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    extra: bytes = b"",
) -> bytes:
    """An HTTP/1.1 request as bytes (`Connection: close`); `extra` goes in the header block."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and not any(n.lower() == "transfer-encoding" for n in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n" + extra + b"\r\n" + (body or b"")


# ---- the stored state -------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@dataclass
class StoreProbe:
    """Reads etcd straight through its JSON gateway: the revision, and every stored key."""

    etcd: EtcdProcess
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.etcd.client_port}", timeout=5)

    def close(self) -> None:
        self.client.close()

    def _range(self, key: bytes, end: bytes, **options: Any) -> dict[str, Any]:
        body = {"key": _b64(key), "range_end": _b64(end), **options}
        response = self.client.post("/v3/kv/range", json=body)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    def revision(self) -> int:
        """etcd's revision: it moves with every write, to any key."""
        return int(self._range(b"\0", b"\0", count_only=True)["header"]["revision"])

    def state(self) -> dict[str, tuple[str, int]]:
        """Every key etcd holds (documents, versions, history, tokens, markers):
        {key: (value, mod_revision)}."""
        payload = self._range(b"\0", b"\0")
        found = {}
        for kv in payload.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            value = base64.b64decode(kv.get("value", "")).decode()
            found[key] = (value, int(kv["mod_revision"]))
        return found

    def changed_since(self, revision: int) -> list[str]:
        """Keys written after `revision` (deletions show as a moved revision only)."""
        return sorted(key for key, (_v, mod) in self.state().items() if mod > revision)
