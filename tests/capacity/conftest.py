"""A real etcd with a small space quota, to fill it up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import RunningService, start_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess

QUOTA_BYTES = 6 * 1024 * 1024


@pytest.fixture
def small_etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """etcd with a 6 MiB quota (`--quota-backend-bytes`) and no auto-compaction."""
    binary = os.environ.get("CONFIGSVC_TEST_ETCD_BINARY")
    proc = EtcdProcess(
        binary=find_etcd_binary(Path(binary) if binary else None),
        data_dir=tmp_path / "small-etcd",
        fast_raft=True,
        auto_compaction_retention=None,
        extra_args=("--quota-backend-bytes", str(QUOTA_BYTES)),
        log_path=tmp_path / "small-etcd.log",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def full_service(small_etcd: EtcdProcess) -> Iterator[RunningService]:
    """The service on `small_etcd`, knowing its quota."""
    running = start_service(small_etcd, keepalive=0.2, etcd_quota_bytes=QUOTA_BYTES)
    yield running
    running.stop()
