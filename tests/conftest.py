"""Fixtures: a real etcd on free loopback ports, the store on it, and a real service."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from configsvc.app import create_app
from configsvc.etcd_process import EtcdProcess, find_etcd_binary, free_port
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_store import EtcdConfigStore

STORE_TIMEOUT = 3.0
ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """A fresh single-member etcd with fast raft timers (~0.1 s to healthy)."""
    proc = EtcdProcess(
        binary=find_etcd_binary(),
        data_dir=tmp_path / "etcd",
        fast_raft=True,
        log_path=tmp_path / "etcd.log",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def store(etcd: EtcdProcess) -> AsyncIterator[EtcdConfigStore]:
    kv = EtcdKV([etcd.client_url], timeout=STORE_TIMEOUT)
    store = EtcdConfigStore(kv, history_limit=1000)
    yield store
    await store.close()


@dataclass
class RunningService:
    """A real uvicorn server with the configsvc app, in a thread of the test process."""

    url: str
    admin_token: str
    etcd: EtcdProcess
    server: uvicorn.Server
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
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
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


@pytest.fixture
def service(etcd: EtcdProcess) -> Iterator[RunningService]:
    running = start_service(etcd)
    yield running
    running.stop()


@pytest.fixture
def api(service: RunningService) -> Iterator[httpx.Client]:
    """An httpx client for the running service, with the admin token."""
    with service.client() as client:
        yield client
