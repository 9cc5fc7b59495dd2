"""Live-helper fixtures: the example fake model servers and an SDK client of the real service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from configsvc_client import ConfigClient
from support import RunningService

from tests.live.servers import FakeLLM


@pytest.fixture
def fake_llm() -> Iterator[Callable[..., FakeLLM]]:
    """Starts fake model servers (`fake_llm("local", latency=0.5)`); stops them after."""
    started: list[FakeLLM] = []

    def start(name: str, **behaviour: Any) -> FakeLLM:
        fake = FakeLLM(name, **behaviour)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
async def client(service: RunningService) -> AsyncIterator[ConfigClient]:
    """An SDK client of the real service for namespace `prod`, with the admin token
    (which may read secrets), running on the test's event loop."""
    async with ConfigClient(service.url, service.admin_token, namespaces=["prod"]) as running:
        yield running
