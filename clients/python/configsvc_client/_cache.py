"""Last-known-good cache: the applied documents in one JSON file per set of namespaces.

Guarantees: a reader sees a whole file or the previous one (temp file, fsync, rename,
fsync of the directory); the file is mode 0600 and its documents are sealed with a key
derived from the client's token (they may hold secret values; see `_cache_seal`); a file is
never replaced by one of an older revision, also by another process sharing the
directory (gunicorn workers); writing happens off the event loop and bursts coalesce
into one write; a fork never happens in the middle of a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configsvc_client._cache_seal import open_sealed, seal
from configsvc_client._runtime import io_lock
from configsvc_client._types import Document, Revision

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("configsvc_client")

CACHE_FORMAT = 2
"""2: documents sealed with the token (1: in clear, still read)."""
CLEAR_FORMAT = 1
MAX_FILE_STEM = 120
_HEADER_BYTES = 256
_REVISION_RE = re.compile(rb'"revision":\s*(\d+)')


@dataclass(frozen=True, slots=True)
class CachedState:
    """What the cache holds: the documents, how far each namespace was known, and when."""

    revision: Revision
    through: Mapping[str, Revision]
    documents: tuple[Document, ...]
    saved_at: float


class SnapshotCache:
    """The cache file of one set of namespaces in `directory`."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        namespaces: Iterable[str] | None,
        token: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._token = token
        stem = "snapshot-" + ("+".join(sorted(namespaces)) if namespaces is not None else "all")
        if len(stem) > MAX_FILE_STEM:
            stem = "snapshot-" + hashlib.sha256(stem.encode()).hexdigest()[:32]
        self.path = self.directory / f"{stem}.json"
        self._lock_path = self.directory / f".{stem}.lock"

    def load(self) -> CachedState | None:
        """The cached state, or None if there is none or it cannot be read."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the config cache %s: %s", self.path, exc)
            return None
        try:
            data = json.loads(raw)
            if data.get("format") == CACHE_FORMAT:
                if self._token is None:
                    raise ValueError("it is sealed, and this client has no token")
                header = _header(data["revision"], data["saved_at"], self.path.name)
                documents = json.loads(open_sealed(self._token, data["sealed"], header))
            elif data.get("format") == CLEAR_FORMAT:
                documents = data["documents"]
            else:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return CachedState(
                revision=int(data["revision"]),
                through={str(k): int(v) for k, v in data["through"].items()},
                documents=tuple(Document.from_wire(d) for d in documents),
                saved_at=float(data["saved_at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the unreadable config cache %s: %s", self.path, exc)
            return None

    def save(self, state: CachedState) -> bool:
        """Write `state` atomically unless the file holds a newer revision; True if written."""
        if self._token is None:
            raise OSError("no token to seal the cache with: it is not written")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        documents = json.dumps([d.to_wire() for d in state.documents]).encode()
        header = _header(state.revision, state.saved_at, self.path.name)
        body: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "revision": state.revision,
            "saved_at": state.saved_at,
            "through": dict(state.through),
            "sealed": seal(self._token, documents, header),
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        with io_lock(), self._locked():
            on_disk = self._revision_on_disk()
            if on_disk is not None and on_disk > state.revision:
                return False
            fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.directory)
        return True

    def _revision_on_disk(self) -> Revision | None:
        try:
            with self.path.open("rb") as file:
                head = file.read(_HEADER_BYTES)
        except OSError:
            return None
        match = _REVISION_RE.search(head)
        return int(match.group(1)) if match else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _header(revision: int, saved_at: float, file_name: str) -> bytes:
    """What a sealed file's documents are bound to: its revision, time and name."""
    return f"{revision}|{saved_at!r}|{file_name}".encode()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class CacheWriter:
    """Writes `export()` to `cache` in a worker thread whenever marked dirty.

    Marks during a write coalesce into one more write of the then-current state.
    """

    def __init__(self, cache: SnapshotCache, export: Callable[[], CachedState]) -> None:
        self._cache = cache
        self._export = export
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        """Why the last write failed; None once a write succeeds."""

    def mark_dirty(self) -> None:
        """Schedule a write of the current state (call on the event loop)."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._dirty:
            self._dirty = False
            state = self._export()
            try:
                await asyncio.to_thread(self._cache.save, state)
            except OSError as exc:
                self.error = f"{self._cache.path}: {exc.strerror or exc}"
                log.warning("cannot write the config cache %s: %s", self._cache.path, exc)
            else:
                self.error = None

    async def flush(self) -> None:
        """Wait for pending writes."""
        if self._task is not None:
            await self._task
