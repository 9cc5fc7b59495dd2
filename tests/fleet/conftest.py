"""Fleet fixtures: two service instances on one etcd, child processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support import RunningService

from tests.cli.conftest import bare_cli, cli
from tests.fleet.helpers import Child
from tests.sdk.conftest import proxy, sdk_service, service_process

__all__ = ["bare_cli", "cli", "proxy", "sdk_service", "service_process"]  # shared fixtures


@pytest.fixture
def two(service_factory: Callable[..., RunningService]) -> tuple[RunningService, RunningService]:
    """Two service instances on the same etcd."""
    return service_factory(), service_factory()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Child processes started by a test (killed at its end)."""
    started: list[Child] = []
    yield started
    for child in started:
        child.close()
