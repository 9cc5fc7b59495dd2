"""Fault-suite fixtures: a 3-member etcd cluster, two service instances, a run's scenario.

A test module may override `etcd_quota` (bytes: each member's `--quota-backend-bytes`, told
to the services as `CONFIGSVC_ETCD_QUOTA_BYTES`) and `lab` (a `NetLab`: every member and
instance in a network namespace of its own, so that links can be cut).

Figures of each run (`report`) are printed at the end of the session; with
`CONFIGSVC_FAULTS_REPORT=PATH` they are also written there as JSON (see bench/faults.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from configsvc.rlimits import raise_open_files_limit
from tests.faults._cluster import EtcdCluster
from tests.faults._netns import FRONT, NetLab
from tests.faults._scenario import Scenario
from tests.faults._services import SERVICE_NAMES, ServiceInstance

REPORT_ENV = "CONFIGSVC_FAULTS_REPORT"
TEST_ETCD_BINARY = os.environ.get("CONFIGSVC_TEST_ETCD_BINARY")

SERVICE_PORT_IN_NAMESPACE = 8080
QUOTA_ENV = "CONFIGSVC_ETCD_QUOTA_BYTES"

_FIGURES = pytest.StashKey[list[dict[str, Any]]]()


@pytest.fixture
def etcd_quota() -> int | None:
    """etcd's space quota in bytes; None: etcd's default."""
    return None


@pytest.fixture
def lab() -> NetLab | None:
    """The network the processes run in; None: loopback, no namespaces."""
    return None


@pytest.fixture
def etcd_binary() -> Path | None:
    """The etcd to run (`CONFIGSVC_TEST_ETCD_BINARY`); None: the usual one."""
    return Path(TEST_ETCD_BINARY) if TEST_ETCD_BINARY else None


@pytest.fixture
def cluster(
    tmp_path: Path, etcd_binary: Path | None, etcd_quota: int | None, lab: NetLab | None
) -> Iterator[EtcdCluster]:
    etcd = EtcdCluster(tmp_path / "etcd", etcd_binary, quota_bytes=etcd_quota, lab=lab)
    etcd.start()
    yield etcd
    etcd.stop()


def make_instance(
    name: str, cluster: EtcdCluster, log_path: Path, etcd_quota: int | None, lab: NetLab | None
) -> ServiceInstance:
    env = {QUOTA_ENV: str(etcd_quota)} if etcd_quota else {}
    if lab is None:
        return ServiceInstance(name, cluster.endpoints, log_path, env=env)
    host = lab.hosts[f"s{name}"]
    return ServiceInstance(
        name,
        cluster.endpoints,
        log_path,
        env=env,
        host=host.address(FRONT),
        port=SERVICE_PORT_IN_NAMESPACE,
        command_prefix=tuple(host.exec_prefix()),
    )


@pytest.fixture
def services(
    cluster: EtcdCluster, tmp_path: Path, etcd_quota: int | None, lab: NetLab | None
) -> Iterator[list[ServiceInstance]]:
    """Two service instances, each given all three etcd endpoints."""
    raise_open_files_limit()
    instances = [
        make_instance(name, cluster, tmp_path / f"service-{name}.log", etcd_quota, lab)
        for name in SERVICE_NAMES
    ]
    try:
        for instance in instances:
            instance.spawn()
        for instance in instances:
            instance.wait_started()
        yield instances
    finally:
        for instance in instances:
            instance.kill()


@pytest.fixture
def scenario(
    cluster: EtcdCluster, services: list[ServiceInstance], tmp_path: Path
) -> Iterator[Scenario]:
    run = Scenario(cluster, services, tmp_path)
    yield run
    run.close()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], None]:
    """Record a run's figures under the test's name."""

    def add(figures: dict[str, Any]) -> None:
        request.config.stash.setdefault(_FIGURES, []).append({"test": request.node.name, **figures})

    return add


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash.get(_FIGURES, [])
    if not rows:
        return
    terminalreporter.section("fault-suite figures")
    for row in rows:
        figures = ", ".join(f"{k}={v}" for k, v in row.items() if k != "test")
        terminalreporter.write_line(f"{row['test']}: {figures}")
    path = os.environ.get(REPORT_ENV)
    if path:
        previous = json.loads(Path(path).read_text()) if Path(path).exists() else []
        Path(path).write_text(json.dumps([*previous, *rows], indent=1) + "\n")
        terminalreporter.write_line(f"figures appended to {path}")
