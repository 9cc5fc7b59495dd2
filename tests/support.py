"""Test helpers importable from any test module: `from support import start_service`.

(pytest puts tests/ on sys.path through `pythonpath` in pyproject.toml.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from configsvc.app import create_app
from configsvc.asgi_server import StreamClosingServer, make_server
from configsvc.etcd_process import EtcdProcess, free_port
from configsvc.settings import ServiceSettings

STORE_TIMEOUT = 3.0
ADMIN_TOKEN = "test-admin-token-0123456789"


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
    """Start the app on a free port against `etcd`; returns once it is ready."""
    port = free_port()
    settings = ServiceSettings(
        host="127.0.0.1",
        port=port,
        etcd=etcd.client_url,
        admin_token=ADMIN_TOKEN,
        store_timeout=overrides.pop("store_timeout", STORE_TIMEOUT),
        **overrides,
    )
    app = create_app(settings, [etcd.client_url])
    server = make_server(app, "127.0.0.1", port, log_level="warning", lifespan="on")
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
