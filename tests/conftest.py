"""Fixtures: a real etcd on free loopback ports, the store on it, and a real service."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import STORE_TIMEOUT, RunningService, start_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_store import EtcdConfigStore

TEST_ETCD_BINARY = os.environ.get("CONFIGSVC_TEST_ETCD_BINARY")
"""Run the suite against another etcd build (CI also runs Debian's etcd 3.4 this way)."""


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """A fresh single-member etcd with fast raft timers (~0.1 s to healthy)."""
    proc = EtcdProcess(
        binary=find_etcd_binary(Path(TEST_ETCD_BINARY) if TEST_ETCD_BINARY else None),
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


@pytest.fixture
def service_factory(etcd: EtcdProcess) -> Iterator[Callable[..., RunningService]]:
    """Starts services on the `etcd` fixture (settings overrides as kwargs); stops them after."""
    started: list[RunningService] = []

    def factory(**overrides: Any) -> RunningService:
        running = start_service(etcd, **overrides)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()
