"""The coordinator, fed scripted updates: fallback and recovery, cache at start, giving up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from configsvc_client import (
    Change,
    ClientOptions,
    ConfigUnavailable,
    Document,
    Mode,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Update,
)
from configsvc_client._cache import SnapshotCache
from configsvc_client._coordinator import Coordinator
from configsvc_client._state import ConfigState
from configsvc_client._types import ResumePoint

OPTIONS = ClientOptions(start_timeout=0.5, cache_fallback_after=0.4)
DOWN = Update(SourceState.INTERRUPTED, error=SourceErrorInfo("unreachable", "test"))
REFUSED = Update(SourceState.OFF, error=SourceErrorInfo("unauthorized", permanent=True))

TOKEN = "cst.test.cache-sealing-token"


def snapshot(revision: int, version: int = 1) -> Update:
    doc = Document("prod", "a", "RateLimits", {"limits": {}}, version=version, revision=revision)
    return Update(SourceState.VALID, snapshot=Snapshot(revision, (doc,)))


class Scripted:
    """A synchronizer that yields what the test pushes; counts its activations."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: asyncio.Queue[Update] = asyncio.Queue()
        self.active = 0
        self.starts = 0
        self.resumed_from: list[int | None] = []

    async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
        self.active += 1
        self.starts += 1
        self.resumed_from.append(since())
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        pass


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_fallback_runs_only_while_the_primary_is_down() -> None:
    stream, poll = Scripted("stream"), Scripted("poll")
    coordinator = Coordinator(ConfigState(["prod"]), stream, poll, options=OPTIONS)
    await coordinator.start()
    stream.queue.put_nowait(Update(SourceState.VALID))
    stream.queue.put_nowait(snapshot(10))
    await coordinator.wait_ready(1)
    assert coordinator.status().mode is Mode.STREAMING
    assert poll.starts == 0

    stream.queue.put_nowait(DOWN)  # the stream dropped: it gets to resume first
    await settle()
    assert poll.active == 0
    stream.queue.put_nowait(DOWN)  # ... and could not: poll
    await settle()
    assert poll.active == 1
    assert poll.resumed_from == [10]
    assert coordinator.status().mode is Mode.CACHED  # no poll has answered yet
    assert coordinator.status().error == "unreachable: test"
    poll.queue.put_nowait(snapshot(12, version=2))
    await settle()
    status = coordinator.status()
    assert (status.mode, status.revision) == (Mode.POLLING, 12)
    assert status.error == "unreachable: test"  # why there is no stream

    stream.queue.put_nowait(Update(SourceState.VALID))
    await settle()
    assert poll.active == 0
    status = coordinator.status()
    assert (status.mode, status.revision, status.error) == (Mode.STREAMING, 12, None)
    await coordinator.aclose()
    assert coordinator.status().mode is Mode.STOPPED


async def test_a_dropped_stream_that_resumes_at_once_never_polls() -> None:
    """After a freeze the stream resumes from its last revision, so callbacks see every
    version in between; a poll first would have jumped to the latest."""
    stream, poll = Scripted("stream"), Scripted("poll")
    state = ConfigState(["prod"])
    seen: list[int] = []
    state.add_listener(lambda _old, new: seen.append(new.version) if new else None)
    coordinator = Coordinator(state, stream, poll, options=OPTIONS)
    await coordinator.start()
    stream.queue.put_nowait(snapshot(10))
    await coordinator.wait_ready(1)
    stream.queue.put_nowait(DOWN)
    await settle()
    for revision, version in ((11, 2), (12, 3), (13, 4)):
        doc = Document(
            "prod", "a", "RateLimits", {"limits": {}}, version=version, revision=revision
        )
        stream.queue.put_nowait(Update(SourceState.VALID, changes=(Change.put(doc),)))
    await settle()
    assert poll.starts == 0
    assert seen == [1, 2, 3, 4]
    await coordinator.aclose()


async def test_cache_is_served_when_stream_and_poll_both_fail(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, ["prod"], TOKEN)
    seeded = ConfigState(["prod"])
    seeded.apply(snapshot(7))
    cache.save(seeded.export())

    stream, poll = Scripted("stream"), Scripted("poll")
    state = ConfigState(["prod"])
    coordinator = Coordinator(state, stream, poll, options=OPTIONS, cache=cache)
    await coordinator.start()
    started = time.monotonic()
    stream.queue.put_nowait(DOWN)
    await settle()
    poll.queue.put_nowait(DOWN)
    await coordinator.wait_ready(1)
    assert time.monotonic() - started < OPTIONS.cache_fallback_after  # did not wait for it
    status = coordinator.status()
    assert (status.mode, status.revision) == (Mode.CACHED, 7)
    assert state.get("prod/a") is not None

    stream.queue.put_nowait(Update(SourceState.VALID))  # the service is back: resume
    stream.queue.put_nowait(snapshot(9, version=2))
    await settle()
    assert coordinator.status().mode is Mode.STREAMING
    await coordinator.aclose()
    assert cache.load().revision == 9  # type: ignore[union-attr]


async def test_cache_is_served_when_the_service_hangs(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, ["prod"], TOKEN)
    seeded = ConfigState(["prod"])
    seeded.apply(snapshot(7))
    cache.save(seeded.export())
    coordinator = Coordinator(
        ConfigState(["prod"]), Scripted("s"), Scripted("p"), options=OPTIONS, cache=cache
    )
    await coordinator.start()
    started = time.monotonic()
    await coordinator.wait_ready(1)
    assert OPTIONS.cache_fallback_after <= time.monotonic() - started < 1.5
    assert coordinator.status().mode is Mode.CACHED
    await coordinator.aclose()


async def test_no_service_and_no_cache_raises_after_start_timeout() -> None:
    coordinator = Coordinator(ConfigState(["prod"]), Scripted("s"), Scripted("p"), options=OPTIONS)
    await coordinator.start()
    with pytest.raises(ConfigUnavailable, match="no cache"):
        await coordinator.wait_ready(OPTIONS.start_timeout)
    await coordinator.aclose()


async def test_a_refused_token_without_cache_fails_at_once() -> None:
    stream, poll = Scripted("s"), Scripted("p")
    coordinator = Coordinator(ConfigState(["prod"]), stream, poll, options=OPTIONS)
    await coordinator.start()
    stream.queue.put_nowait(REFUSED)
    await settle()
    poll.queue.put_nowait(REFUSED)
    with pytest.raises(ConfigUnavailable, match="unauthorized"):
        await coordinator.wait_ready(5)
    await coordinator.aclose()


async def test_a_refused_token_keeps_the_last_values() -> None:
    stream, poll = Scripted("s"), Scripted("p")
    state = ConfigState(["prod"])
    coordinator = Coordinator(state, stream, poll, options=OPTIONS)
    await coordinator.start()
    stream.queue.put_nowait(snapshot(3))
    await coordinator.wait_ready(1)
    stream.queue.put_nowait(REFUSED)
    await settle()
    poll.queue.put_nowait(REFUSED)
    await settle()
    status = coordinator.status()
    assert (status.mode, status.error, status.revision) == (Mode.CACHED, "unauthorized", 3)
    assert state.get("prod/a") is not None
    await coordinator.aclose()


async def test_a_crashing_source_is_reported_not_fatal() -> None:
    class Broken(Scripted):
        async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
            yield snapshot(1)
            raise RuntimeError("bug")

    poll = Scripted("p")
    coordinator = Coordinator(ConfigState(["prod"]), Broken("b"), poll, options=OPTIONS)
    await coordinator.start()
    await coordinator.wait_ready(1)
    await settle()
    assert coordinator.status().error and "internal_error" in coordinator.status().error
    assert poll.active == 1  # polling took over
    await coordinator.aclose()
