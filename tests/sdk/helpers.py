"""SDK test helpers: fast options, a TCP proxy that breaks streams on demand, and a service
in a subprocess that can be SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from configsvc_client import ClientOptions
from support import ADMIN_TOKEN

from configsvc.embedded.process import EtcdProcess, free_port

KEEPALIVE = 0.1
"""The service's keep-alive in these tests."""

FAST = ClientOptions(
    start_timeout=5,
    poll_interval=0.05,
    backoff_initial=0.01,
    backoff_max=0.1,
    backoff_reset_after=1,
    server_keepalive=2.5 * KEEPALIVE,  # silence = 5 keep-alives: a margin for loaded machines
    connect_timeout=1,
    read_timeout=2,
    cache_fallback_after=0.5,
    auth_retry_interval=0.5,
    reload_debounce=0.02,
    stop_timeout=5,
)
"""Every interval of the SDK in milliseconds, so that the tests run fast."""


def limits(rps: float) -> dict[str, Any]:
    return {"limits": {"chat": {"requests_per_second": rps, "burst": 1}}}


def put(api: httpx.Client, key: str, spec: dict[str, Any], kind: str = "RateLimits") -> Any:
    response = api.put(f"/v1/configs/{key}", json={"kind": kind, "spec": spec})
    assert response.status_code in (200, 201), response.text
    return response.json()


def delete(api: httpx.Client, key: str) -> None:
    response = api.delete(f"/v1/configs/{key}")
    assert response.status_code in (200, 204), response.text


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, message: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.005)


async def async_wait_until(predicate: Callable[[], object], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)


class ChaosProxy:
    """A TCP proxy in its own thread and event loop, in front of `upstream_port`.

    It can refuse new watch requests or other requests (answering 503), cut every open
    connection, and stall the watch streams open now (they stay open but nothing more
    reaches the client). It counts requests (refused ones too; fleet reports and goodbyes
    apart from the others) and records each watch request's `Last-Event-ID` and headers.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refuse_watch = False
        self.refuse_other = False
        self.watch_requests = 0
        self.other_requests = 0
        self.fleet_requests = 0
        self.resume_ids: list[str | None] = []
        self.watch_headers: list[dict[str, str]] = []
        self._stalled: set[int] = set()
        self._watch_conns: set[int] = set()
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(5)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    def cut(self) -> None:
        """Close every open connection (streams and pooled ones)."""
        self._call(self._cut)

    def stall_streams(self) -> None:
        """Keep the open watch streams open but pass nothing more through them."""
        self._call(lambda: self._stalled.update(self._watch_conns))

    def close(self) -> None:
        self._call(self._cut)
        self._call(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, fn: Callable[[], object]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def _cut(self) -> None:
        for writer in list(self._writers.values()):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = id(writer)
        self._writers[conn] = writer
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers[conn + 1] = up_writer

        async def client_to_upstream() -> None:
            while data := await reader.read(65536):
                if data[:4] in (b"GET ", b"PUT ", b"POST", b"DELE", b"HEAD"):
                    is_watch = data.startswith(b"GET /v1/watch")
                    if is_watch:
                        self.watch_requests += 1
                        self.resume_ids.append(_header(data, b"last-event-id"))
                        self.watch_headers.append(_headers(data))
                    elif b" /v1/fleet/reports" in data.split(b"\r\n", 1)[0]:
                        self.fleet_requests += 1
                    else:
                        self.other_requests += 1
                    if self.refuse_watch if is_watch else self.refuse_other:
                        writer.write(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                            b"connection: close\r\n\r\n"
                        )
                        await writer.drain()
                        writer.close()
                        up_writer.close()
                        return
                    if is_watch:
                        self._watch_conns.add(conn)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                if conn in self._stalled:
                    continue
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await asyncio.gather(client_to_upstream(), upstream_to_client())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self._writers.pop(conn, None)
            self._writers.pop(conn + 1, None)
            self._watch_conns.discard(conn)
            self._stalled.discard(conn)


def _header(request: bytes, name: bytes) -> str | None:
    return _headers(request).get(name.decode())


def _headers(request: bytes) -> dict[str, str]:
    """The request's headers, names in lower case."""
    found = {}
    for line in request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        found[key.strip().lower().decode()] = value.strip().decode()
    return found


SERVE = """
import sys
from configsvc.app import create_app
from configsvc.asgi_server import make_server
from configsvc.settings import ServiceSettings
port, etcd, token, keepalive = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
settings = ServiceSettings(host="127.0.0.1", port=port, etcd=etcd, admin_token=token,
                           keepalive=keepalive, store_timeout=3)
make_server(create_app(settings, [etcd]), "127.0.0.1", port, log_level="warning").run()
"""


class ServiceProcess:
    """The service in a subprocess on a fixed port, so that it can be killed and started
    again on the same port."""

    def __init__(self, etcd: EtcdProcess) -> None:
        self.etcd = etcd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = ADMIN_TOKEN
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(self.port), self.etcd.client_url, ADMIN_TOKEN, str(KEEPALIVE)]
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, *args])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the service process exited")
            time.sleep(0.05)
        raise RuntimeError("the service process did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)
