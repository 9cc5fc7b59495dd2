"""Rollout fixtures: two service instances on one etcd, SDK fleets in child processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import RunningService

from tests.cli.conftest import bare_cli, cli
from tests.rollouts.helpers import Fleet
from tests.sdk.conftest import service_process

__all__ = ["bare_cli", "cli", "service_process"]  # shared fixtures

KEEPALIVE = 0.5


@pytest.fixture
def two(service_factory: Callable[..., RunningService]) -> tuple[RunningService, RunningService]:
    """Two service instances on the same etcd."""
    return service_factory(keepalive=KEEPALIVE), service_factory(keepalive=KEEPALIVE)


@pytest.fixture
def fleets() -> Iterator[Callable[..., Fleet]]:
    """Starts `Fleet`s (SDK clients in a child process); stops them at the test's end."""
    started: list[Fleet] = []

    def start(*args: Any, **kwargs: Any) -> Fleet:
        fleet = Fleet(*args, **kwargs)
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.close()
