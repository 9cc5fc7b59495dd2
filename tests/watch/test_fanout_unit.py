"""The fan-out fed by a scripted store feed: ordering, hand-over from catch-up to live,
shared reads, slow readers, gaps and revocations, with no etcd in the way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from configsvc.fanout import Fanout, FanoutOptions, Subscriber
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.store.records import Document
from configsvc.store.replay import Change, Snapshot
from configsvc.store.spec_codec import SpecCodec
from configsvc.store.watcher import ChangeHandler, FamilyChange, GapHandler, StartHandler


class ScriptedFeed:
    """A `ChangeFeed` whose changes the test writes."""

    def __init__(self) -> None:
        self.head = 0
        self.down = 0.0
        self.versions: dict[tuple[str, str], int] = {}
        self._ready = asyncio.Event()
        self._handlers: dict[str, list[ChangeHandler]] = {}
        self._start: list[StartHandler] = []
        self._gap: list[GapHandler] = []

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def down_for(self) -> float:
        return self.down

    def on(self, family: str, handler: ChangeHandler) -> None:
        self._handlers.setdefault(family, []).append(handler)

    def on_start(self, handler: StartHandler) -> None:
        self._start.append(handler)

    def on_gap(self, handler: GapHandler) -> None:
        self._gap.append(handler)

    def start(self, revision: int) -> None:
        self.head = revision
        for handler in self._start:
            handler(revision)
        self._ready.set()

    def commit(self, *changes: tuple[str, str, bytes | None]) -> int:
        """One transaction: its (family, key, value) changes at one new revision, in order."""
        revision = self.head + 1
        for family, key, value in changes:
            for handler in self._handlers.get(family, []):
                handler(FamilyChange(family, key, value, revision))
        self.head = revision
        return revision

    def put(self, ns: str, name: str, rps: float = 1, key: str | None = None) -> int:
        """A write as the store makes it: the version's spec, then the document's metadata."""
        self.versions[(ns, name)] = version = self.versions.get((ns, name), 0) + 1
        meta, spec = stored(rps, key, version)
        return self.commit(
            ("hspec", f"{ns}/{name}/{version:012d}", spec), ("doc", f"{ns}/{name}", meta)
        )

    def gap(self) -> None:
        self._ready.clear()
        for handler in self._gap:
            handler()


def stored(rps: float, key: str | None = None, version: int = 1) -> tuple[bytes, bytes]:
    """A document key's value (metadata) and its version's spec key's value."""
    if key is not None:
        kind = "ModelEndpoints"
        endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": key}
        spec: dict[str, Any] = {"default": "a", "endpoints": {"a": endpoint}}
    else:
        kind, spec = "RateLimits", {"limits": {"chat": {"requests_per_second": rps}}}
    meta = {"kind": kind, "version": version, "updated_at": "t", "updated_by": "u"}
    return json.dumps(meta).encode(), json.dumps(spec).encode()


class ScriptedReplayer:
    """Snapshots of what the test says, released when the test says so; counts reads."""

    def __init__(self) -> None:
        self.snapshot_reads = 0
        self.revision = 0
        self.documents: list[Document] = []
        self.release = asyncio.Event()
        self.release.set()

    async def snapshot(self, namespaces: Sequence[str]) -> Snapshot:
        self.snapshot_reads += 1
        revision = self.revision
        await self.release.wait()
        return Snapshot(revision, [d for d in self.documents if d.namespace in namespaces])

    async def changes_since(
        self, namespaces: Sequence[str], since: int
    ) -> tuple[int, list[Change]] | None:
        return None  # the history reaches back to nothing: a snapshot


class Recorder:
    """A `StreamWriter` that keeps what it was sent; refuses writes once `full`."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.comments: list[str] = []
        self.full = False
        self.aborted = False

    def write(self, raw: bytes, framed: bytes) -> bool:
        if self.full:
            return False
        if raw.startswith(b":"):
            self.comments.append(raw.decode()[1:].strip())
            return True
        fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n"))
        self.events.append((fields["event"], int(fields["id"]), json.loads(fields["data"])))
        return True

    def is_closed(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def revisions(self) -> list[int]:
        return [revision for _kind, revision, _data in self.events]


def make_fanout(feed: ScriptedFeed, replayer: ScriptedReplayer, **options: Any) -> Fanout:
    return Fanout(
        feed,
        replayer,  # type: ignore[arg-type]
        SpecCodec(),
        KindRegistry(),
        Metrics(),
        FanoutOptions(ready_timeout=1.0, **options),
    )


def subscriber(*namespaces: str, secrets: bool = True, token: str = "t") -> Subscriber:
    return Subscriber(frozenset(namespaces), secrets, token, Recorder())


def recorder(sub: Subscriber) -> Recorder:
    assert isinstance(sub.writer, Recorder)
    return sub.writer


@pytest.fixture
def feed() -> ScriptedFeed:
    return ScriptedFeed()


@pytest.fixture
def replayer() -> ScriptedReplayer:
    return ScriptedReplayer()


async def test_a_resume_inside_the_ring_gets_each_later_change_once_in_order(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(10)
    revisions = [feed.put("prod", "a", rps) for rps in range(1, 6)]
    feed.put("other", "x")
    sub = subscriber("prod")
    await fanout.subscribe(sub, revisions[1])
    later = feed.put("prod", "b")
    assert recorder(sub).revisions() == [*revisions[2:], later]
    assert replayer.snapshot_reads == 0


async def test_changes_during_a_snapshot_read_follow_it_without_gaps_or_repeats(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(10)
    replayer.revision = 10
    replayer.release.clear()
    first, second = subscriber("prod"), subscriber("prod", secrets=False)
    joining = [asyncio.create_task(fanout.subscribe(s, None)) for s in (first, second)]
    await asyncio.sleep(0.01)
    during = [feed.put("prod", "a", 2), feed.put("prod", "b", 3)]
    replayer.release.set()
    await asyncio.gather(*joining)
    after = feed.put("prod", "a", 4)
    for sub in (first, second):
        kinds = [kind for kind, _rev, _data in recorder(sub).events]
        assert kinds == ["snapshot", "put", "put", "put"]
        assert recorder(sub).revisions() == [10, *during, after]
    assert replayer.snapshot_reads == 1, "streams that start together share one read"


async def test_a_read_older_than_the_ring_is_done_again(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer, ring_events=1)
    feed.start(10)
    replayer.revision = 10
    replayer.release.clear()
    sub = subscriber("prod")
    joining = asyncio.create_task(fanout.subscribe(sub, None))
    await asyncio.sleep(0.01)
    feed.put("prod", "a")
    replayer.revision = feed.put("prod", "b")  # the ring forgot revision 11
    replayer.release.set()
    await joining
    assert replayer.snapshot_reads == 2
    assert recorder(sub).revisions() == [12]


async def test_secrets_are_masked_for_tokens_that_may_not_read_them(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(1)
    clear, masked = subscriber("prod"), subscriber("prod", secrets=False)
    await fanout.subscribe(clear, 1)
    await fanout.subscribe(masked, 1)
    feed.put("prod", "models", key="sk-secret")
    key_of = lambda sub: recorder(sub).events[-1][2]["spec"]["endpoints"]["a"]["api_key"]  # noqa: E731
    assert key_of(clear) == "sk-secret"
    assert key_of(masked) == "****"


async def test_a_slow_reader_is_dropped_and_the_others_go_on(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(1)
    slow, fine = subscriber("prod"), subscriber("prod")
    await fanout.subscribe(slow, 1)
    await fanout.subscribe(fine, 1)
    recorder(slow).full = True
    revision = feed.put("prod", "a")
    assert slow.done.result() == "slow" and recorder(slow).aborted
    assert recorder(fine).revisions() == [revision]
    assert fanout.subscriber_count == 1


async def test_a_gap_ends_every_stream_and_new_ones_wait_for_the_restart(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(5)
    sub = subscriber("prod")
    await fanout.subscribe(sub, 5)
    feed.gap()
    assert sub.done.result() == "resync"
    late = subscriber("prod")
    joining = asyncio.create_task(fanout.subscribe(late, 5))
    await asyncio.sleep(0.01)
    assert not joining.done(), "a stream must not start from the emptied ring"
    replayer.revision = 20
    feed.start(20)
    await joining
    assert recorder(late).events[0][0] == "snapshot"
    assert fanout.floor == 20


async def test_closing_a_token_s_streams_leaves_the_others(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(1)
    gone, kept = subscriber("prod", token="gone"), subscriber("prod", token="kept")
    await fanout.subscribe(gone, 1)
    await fanout.subscribe(kept, 1)
    fanout.close_streams_of("gone")
    assert gone.done.result() == "revoked"
    assert not kept.done.done()


async def test_no_watch_yet_refuses_a_stream_after_the_ready_timeout(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    from configsvc.errors import StoreUnavailable

    fanout = make_fanout(feed, replayer)
    fanout.options = FanoutOptions(ready_timeout=0.05)
    with pytest.raises(StoreUnavailable):
        await fanout.subscribe(subscriber("prod"), None)
    assert fanout.subscriber_count == 0


async def test_a_document_joins_the_spec_written_in_its_revision(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    fanout = make_fanout(feed, replayer)
    feed.start(1)
    sub = subscriber("prod")
    await fanout.subscribe(sub, 1)
    feed.put("prod", "a", 7)
    meta, _spec = stored(8, version=2)
    rewritten = feed.commit(("doc", "prod/a", meta))  # metadata rewritten, no new spec
    legacy = json.dumps({**json.loads(meta), "version": 3, "spec": {"limits": {}}}).encode()
    old_layout = feed.commit(("doc", "prod/a", legacy))  # a key written by release 0.1
    events = recorder(sub).events
    assert [data["spec"] for _k, _r, data in events] == [
        {"limits": {"chat": {"requests_per_second": 7}}},
        {"limits": {}},
    ]
    assert rewritten not in recorder(sub).revisions()
    assert recorder(sub).revisions()[-1] == old_layout


async def test_streams_end_when_the_store_watch_stays_down(
    feed: ScriptedFeed, replayer: ScriptedReplayer
) -> None:
    """A brief interruption keeps the streams; a long one ends them, saying why, so that
    clients resume on an instance that still reaches etcd."""
    fanout = make_fanout(feed, replayer, sweep_interval=0.01, unreachable_after=0.5)
    feed.start(1)
    sub = subscriber("prod")
    await fanout.subscribe(sub, 1)
    fanout.start()
    try:
        feed.down = 0.2
        await asyncio.sleep(0.05)
        assert not sub.done.done()
        feed.down = 0.6
        reason = await asyncio.wait_for(sub.done, 1)
        assert reason == "store unreachable"
        assert recorder(sub).comments[-1].startswith("stream ended: this instance cannot")
    finally:
        await fanout.stop()
