"""The last-known-good cache: atomic, private, never older, written off the loop, coalesced."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path

from configsvc_client import Document
from configsvc_client._cache import CachedState, CacheWriter, SnapshotCache

TOKEN = "cst.test.cache-sealing-token"


def state(revision: int, api_key: str = "sk-secret") -> CachedState:
    spec = {
        "default": "a",
        "endpoints": {"a": {"base_url": "http://x", "model": "m", "api_key": api_key}},
    }
    doc = Document("prod", "models", "ModelEndpoints", spec, version=1, revision=revision)
    return CachedState(revision, {"prod": revision}, (doc,), saved_at=1.0)


def test_round_trip_and_private_mode(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache", ["prod", "dev"], TOKEN)
    assert cache.load() is None
    assert cache.save(state(5))
    assert cache.path.name == "snapshot-dev+prod.json"
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    loaded = cache.load()
    assert loaded == state(5)
    assert [p.name for p in cache.directory.iterdir() if p.suffix == ".tmp"] == []


def test_never_replaced_by_an_older_revision(tmp_path: Path) -> None:
    first, second = (
        SnapshotCache(tmp_path, ["prod"], TOKEN),
        SnapshotCache(tmp_path, ["prod"], TOKEN),
    )
    assert first.save(state(9, api_key="new"))
    assert not second.save(state(8, api_key="old"))
    loaded = first.load()
    assert loaded is not None and loaded.revision == 9


def test_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, ["prod"], TOKEN)
    cache.path.write_text("{not json")
    assert cache.load() is None
    assert cache.save(state(1))  # and it gets replaced


def test_long_namespace_lists_get_a_hashed_name(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, [f"namespace-{i}" for i in range(20)])
    assert len(cache.path.name) < 64


class CountingCache(SnapshotCache):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory, ["prod"], TOKEN)
        self.threads: list[int] = []
        self.release = threading.Event()

    def save(self, state: CachedState) -> bool:
        self.threads.append(threading.get_ident())
        self.release.wait(5)
        return super().save(state)


async def test_writes_happen_off_the_loop_and_bursts_coalesce(tmp_path: Path) -> None:
    cache = CountingCache(tmp_path)
    revision = [0]
    writer = CacheWriter(cache, lambda: state(revision[0]))
    revision[0] = 1
    writer.mark_dirty()
    await asyncio.sleep(0.05)  # the first write is in progress (blocked)
    for r in range(2, 50):
        revision[0] = r
        writer.mark_dirty()
    cache.release.set()
    await writer.flush()
    assert len(cache.threads) == 2  # the first, then one for the whole burst
    assert threading.get_ident() not in cache.threads
    loaded = cache.load()
    assert loaded is not None and loaded.revision == 49
    assert os.listdir(tmp_path)


async def test_a_failed_cache_write_shows_in_the_writer_s_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    writer = CacheWriter(SnapshotCache(blocker / "cache", ["prod"], TOKEN), lambda: state(3))
    writer.mark_dirty()
    await writer.flush()
    assert writer.error is not None and "not-a-dir" in writer.error
    blocker.unlink()
    writer.mark_dirty()
    await writer.flush()
    assert writer.error is None


def test_secrets_are_sealed_on_disk_and_open_only_with_the_token(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, ["prod"], TOKEN)
    assert cache.save(state(4, api_key="sk-MARKER-cache-77"))
    assert b"sk-MARKER-cache-77" not in cache.path.read_bytes()
    assert b"api_key" not in cache.path.read_bytes()
    loaded = cache.load()
    assert loaded is not None and loaded.documents == state(4, "sk-MARKER-cache-77").documents
    assert SnapshotCache(tmp_path, ["prod"], "cst.other.token").load() is None
    assert SnapshotCache(tmp_path, ["prod"], None).load() is None


def test_a_cache_written_by_release_0_1_in_clear_is_still_read(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path, ["prod"], TOKEN)
    old = {"format": 1, "revision": 3, "saved_at": 1.0, "through": {"prod": 3},
           "documents": [d.to_wire() for d in state(3).documents]}  # fmt: skip
    cache.path.write_text(json.dumps(old))
    loaded = cache.load()
    assert loaded is not None and loaded.revision == 3
