"""Test helpers importable from any test module: `from support import start_service`.

(pytest puts tests/ on sys.path through `pythonpath` in pyproject.toml.)
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from configsvc.app import create_app
from configsvc.asgi_server import StreamClosingServer, make_server
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.settings import ServiceSettings

STORE_TIMEOUT = 3.0
ADMIN_TOKEN = "test-admin-token-0123456789"
AUTH_FAILURES_PER_MINUTE = 1_000_000
"""Tests send many bad tokens on purpose; the throttle's own test sets its threshold."""


@dataclass
class RunningService:
    """A real uvicorn server with the configsvc app, in a thread of the test process."""

    url: str
    admin_token: str
    etcd: EtcdProcess
    server: StreamClosingServer
    thread: threading.Thread

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client for the service; the admin token unless `token` is given."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_service(etcd: EtcdProcess, **overrides: Any) -> RunningService:
    """Start the app on a free port against `etcd`; returns once it is ready.

    `overrides` are ServiceSettings fields, and `uvicorn_loop` (auto, asyncio, uvloop).
    """
    port = free_port()
    loop = overrides.pop("uvicorn_loop", "auto")
    settings = ServiceSettings(
        host="127.0.0.1",
        port=port,
        etcd=etcd.client_url,
        admin_token=ADMIN_TOKEN,
        store_timeout=overrides.pop("store_timeout", STORE_TIMEOUT),
        auth_failures_per_minute=overrides.pop(
            "auth_failures_per_minute", AUTH_FAILURES_PER_MINUTE
        ),
        **overrides,
    )
    app = create_app(settings, [etcd.client_url])
    server = make_server(
        app,
        "127.0.0.1",
        port,
        request_read_timeout=settings.request_read_timeout,
        log_level="warning",
        lifespan="on",
        loop=loop,
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return RunningService(url, ADMIN_TOKEN, etcd, server, thread)
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    server.should_exit = True
    raise RuntimeError("service did not become ready")


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: Any
    """The parsed JSON data; None for comments."""
    comment: str | None = None


class SseReader:
    """Reads one watch stream in a thread; `next()` returns events (and comments) in order."""

    def __init__(
        self,
        url: str,
        token: str,
        namespaces: list[str],
        *,
        since: int | None = None,
        last_event_id: int | None = None,
        timeout: float = 10.0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        params: list[tuple[str, str]] = [("namespace", ns) for ns in namespaces]
        if since is not None:
            params.append(("since", str(since)))
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        headers.update(extra_headers or {})
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.events: queue.Queue[SseEvent | BaseException | None] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, read=None))
        self._request = self._client.build_request(
            "GET", f"{url}/v1/watch", params=params, headers=headers
        )
        self.response = self._client.send(self._request, stream=True)
        self.status_code = self.response.status_code
        self.headers = self.response.headers
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.events.put(SseEvent(None, "comment", None, line[1:].strip()))
                elif line == "":
                    if fields:
                        data = json.loads(fields["data"]) if "data" in fields else None
                        event_id = int(fields["id"]) if "id" in fields else None
                        self.events.put(SseEvent(event_id, fields.get("event", "message"), data))
                    fields = {}
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, OSError) as exc:
            self.events.put(exc)
        self.events.put(None)

    def next(self, timeout: float = 10.0, *, comments: bool = False) -> SseEvent | None:
        """The next event (None when the stream ended); skips comments unless asked."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no event in time")
            try:
                item = self.events.get(timeout=remaining)
            except queue.Empty:
                raise TimeoutError("no event in time") from None
            if isinstance(item, BaseException):
                return None
            if item is None:
                self.events.put(None)
                return None
            if item.event == "comment" and not comments:
                continue
            return item

    def close(self) -> None:
        """End the stream; a reader thread blocked on the socket wakes up and ends too."""
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self._client.close()
        self._thread.join(timeout=5)
