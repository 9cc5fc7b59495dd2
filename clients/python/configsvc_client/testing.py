"""An in-memory source for testing code that uses `ConfigClient`, with no service.

```python
from configsvc_client import ConfigClient
from configsvc_client.kinds import RateLimits
from configsvc_client.testing import InMemorySource

source = InMemorySource()
source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 5}}})
client = ConfigClient.from_source(source, namespaces=["prod"])
limits = client.bind("prod/limits", RateLimits)
client.start()
source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 9}}})
assert limits.value.limits["chat"].requests_per_second == 9   # applied before put() returned
client.stop()
```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configsvc_schemas.wire import split_key

from configsvc_client._types import (
    Change,
    Document,
    ResumePoint,
    Revision,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Update,
)

__all__ = ["InMemorySource"]

DEFAULT_WAIT = 5.0
TEST_USER = "test"


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[Update, int]] = field(default_factory=asyncio.Queue)
    applied: int = 0
    done: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self, seq: int, *, done: bool = False) -> None:
        """Called on the subscriber's loop once it has applied everything up to `seq`."""
        with self.cond:
            self.applied = max(self.applied, seq)
            self.done = self.done or done
            self.cond.notify_all()
        self.progress.set()

    def behind(self, seq: int) -> bool:
        return not self.done and self.applied < seq

    def wait(self, seq: int, timeout: float) -> bool:
        """From another thread: wait until `seq` is applied (or the client left)."""
        with self.cond:
            return self.cond.wait_for(lambda: not self.behind(seq), timeout)


class InMemorySource:
    """Documents held in memory; `put`/`delete` reach every client using the source.

    Called from a thread other than a client's event loop (plain tests with `start()`),
    `put` and `delete` return only once every running client has applied the change.
    From the client's own loop (asyncio tests) they return at once: `await settled()`.
    `interrupt()` makes clients see an outage (their status leaves "streaming" and the
    last values stay); `restore()` ends it.
    """

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, Document] = {}
        self._versions: dict[str, int] = {}
        self._revision: Revision = 0
        self._seq = 0
        self._subscribers: list[_Subscriber] = []
        self._interrupted: SourceErrorInfo | None = None

    @property
    def revision(self) -> Revision:
        """The revision of the last change."""
        return self._revision

    def put(
        self,
        key: str,
        kind: str,
        spec: Mapping[str, Any],
        *,
        message: str | None = None,
        wait: float = DEFAULT_WAIT,
    ) -> Document:
        """Create or replace `"ns/name"`; returns the stored version."""
        namespace, name = split_key(key)
        with self._lock:
            self._revision += 1
            version = self._versions.get(key, 0) + 1
            self._versions[key] = version
            document = Document(
                namespace=namespace,
                name=name,
                kind=kind,
                spec=dict(spec),
                version=version,
                revision=self._revision,
                updated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                updated_by=TEST_USER,
                message=message,
            )
            self._documents[key] = document
            seq = self._publish(Update(SourceState.VALID, changes=(Change.put(document),)))
        self._wait(seq, wait)
        return document

    def delete(self, key: str, *, wait: float = DEFAULT_WAIT) -> None:
        """Delete `"ns/name"` (KeyError if it does not exist)."""
        namespace, name = split_key(key)
        with self._lock:
            if key not in self._documents:
                raise KeyError(key)
            del self._documents[key]
            self._revision += 1
            change = Change.delete(namespace, name, self._revision)
            seq = self._publish(Update(SourceState.VALID, changes=(change,)))
        self._wait(seq, wait)

    def interrupt(self, code: str = "unreachable", *, permanent: bool = False) -> None:
        """Simulate an outage (`permanent=True`: a refused token, e.g. "unauthorized")."""
        with self._lock:
            self._interrupted = SourceErrorInfo(code, permanent=permanent)
            state = SourceState.OFF if permanent else SourceState.INTERRUPTED
            seq = self._publish(Update(state, error=self._interrupted))
        self._wait(seq, DEFAULT_WAIT)

    def restore(self) -> None:
        """End an outage: clients get the current documents and stream again."""
        with self._lock:
            self._interrupted = None
            seq = self._publish(Update(SourceState.VALID, snapshot=self._snapshot()))
        self._wait(seq, DEFAULT_WAIT)

    async def settled(self, within: float = DEFAULT_WAIT) -> None:
        """Wait until every client on this loop has applied every change made so far."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            while True:
                seq = self._seq
                pending = [s for s in self._subscribers if s.loop is loop and s.behind(seq)]
                if not pending:
                    return
                pending[0].progress.clear()
                await pending[0].progress.wait()

    # -- Synchronizer -----------------------------------------------------------------

    async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
        subscriber = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            if self._interrupted is None:
                first = Update(SourceState.VALID, snapshot=self._snapshot())
            else:
                state = SourceState.OFF if self._interrupted.permanent else SourceState.INTERRUPTED
                first = Update(state, error=self._interrupted)
            seq = self._seq
            self._subscribers.append(subscriber)
        try:
            yield first
            subscriber.mark(seq)
            while True:
                update, seq = await subscriber.queue.get()
                yield update
                subscriber.mark(seq)
        finally:
            with self._lock:
                self._subscribers.remove(subscriber)
            subscriber.mark(self._seq, done=True)

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- internals --------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        return Snapshot(self._revision, tuple(self._documents.values()))

    def _publish(self, update: Update) -> int:
        self._seq += 1
        for subscriber in self._subscribers:
            subscriber.loop.call_soon_threadsafe(subscriber.queue.put_nowait, (update, self._seq))
        return self._seq

    def _wait(self, seq: int, timeout: float) -> None:
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for subscriber in list(self._subscribers):
            if subscriber.loop is current:
                continue
            if not subscriber.wait(seq, timeout):
                raise TimeoutError(f"a client did not apply the change within {timeout} s")
