"""Fixtures: a real etcd on free loopback ports, the store on it, and a real service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from configsvc.etcd_process import EtcdProcess, find_etcd_binary
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_store import EtcdConfigStore

STORE_TIMEOUT = 3.0


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
