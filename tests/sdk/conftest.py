"""SDK fixtures: the real service with a short keep-alive, a chaos proxy, a killable service."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support import RunningService, start_service

from configsvc.embedded.process import EtcdProcess
from tests.sdk.helpers import KEEPALIVE, ChaosProxy, ServiceProcess


@pytest.fixture
def sdk_service(etcd: EtcdProcess) -> Iterator[RunningService]:
    """The real service (uvicorn in a thread) with a short keep-alive."""
    running = start_service(etcd, keepalive=KEEPALIVE)
    yield running
    running.stop()


@pytest.fixture
def admin(sdk_service: RunningService) -> Iterator[httpx.Client]:
    with sdk_service.client() as client:
        yield client


@pytest.fixture
def proxy(sdk_service: RunningService) -> Iterator[ChaosProxy]:
    chaos = ChaosProxy(int(sdk_service.url.rsplit(":", 1)[1]))
    yield chaos
    chaos.close()


@pytest.fixture
def service_process(etcd: EtcdProcess) -> Iterator[ServiceProcess]:
    running = ServiceProcess(etcd)
    running.start()
    yield running
    running.kill()
