"""The process's one etcd watch, dispatched by key family to whoever follows that family.

One watch on the service's key prefix, from an explicit revision, re-established from the
last revision seen after any etcd error (with jittered backoff). A change is handed to the
handlers of its family (`doc`, `tok`, …: the first path segment after the prefix, see
`KeyLayout`), in revision order, and only then does `head` move past it.

When the watch finds its start revision compacted away, changes between `head` and now are
lost to it: the followers are told (`on_gap`), the watcher reads the current revision
afresh, and tells them it has started over from there (`on_start`). Until then it is not
ready, so that nothing relies on a `head` it cannot continue from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from configsvc.errors import StoreUnavailable
from configsvc.store.etcd_client import EtcdKV, KeyChange, WatchCompacted
from configsvc.store.keys import KeyLayout

log = logging.getLogger("configsvc.watcher")

ChangeHandler = Callable[["FamilyChange"], None]
StartHandler = Callable[[int], Awaitable[None] | None]
"""Called with the revision the watch starts from; one that returns an awaitable (e.g. a
cache that reads the store afresh) is awaited before any change is handed on."""
GapHandler = Callable[[], None]


@dataclass(frozen=True, slots=True)
class FamilyChange:
    """A change of a key of one family: `key` is the rest of the key after the family."""

    family: str
    key: str
    value: bytes | None
    revision: int

    @property
    def deleted(self) -> bool:
        return self.value is None


class ChangeFeed(Protocol):
    """What followers of the store need of a watcher (a scripted one in unit tests)."""

    @property
    def head(self) -> int:
        """The last store revision whose changes every handler has been given."""
        ...

    async def wait_ready(self) -> None:
        """Return once the watch is established (at once when it is)."""
        ...

    def down_for(self) -> float:
        """Seconds the watch has been interrupted (0 while it is up)."""
        ...

    def on(self, family: str, handler: ChangeHandler) -> None: ...

    def on_start(self, handler: StartHandler) -> None: ...

    def on_gap(self, handler: GapHandler) -> None: ...


@dataclass(frozen=True)
class WatcherOptions:
    retry_initial: float = 0.1
    retry_max: float = 5.0
    """Backoff bounds (seconds) for re-establishing the etcd watch."""


class StoreWatcher:
    """The single etcd watch of a process (a `ChangeFeed`)."""

    def __init__(
        self, kv: EtcdKV, layout: KeyLayout, options: WatcherOptions | None = None
    ) -> None:
        self._kv = kv
        self._layout = layout
        self._options = options or WatcherOptions()
        self._prefix = layout.prefix.encode()
        self._handlers: dict[str, list[ChangeHandler]] = {}
        self._start_handlers: list[StartHandler] = []
        self._gap_handlers: list[GapHandler] = []
        self._head = 0
        self._started = False
        """The watch has read a current revision (false again after a gap)."""
        self._down_since: float | None = None
        """When the watch broke (None while it is up)."""
        self._probe: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def head(self) -> int:
        return self._head

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def on(self, family: str, handler: ChangeHandler) -> None:
        """Call `handler` with every change of a key of `family`, in revision order."""
        self._handlers.setdefault(family, []).append(handler)

    def on_start(self, handler: StartHandler) -> None:
        """Call `handler(revision)` whenever the watch (re)starts from a fresh read (and await
        what it returns, if anything, before the first change)."""
        self._start_handlers.append(handler)

    def on_gap(self, handler: GapHandler) -> None:
        """Call `handler()` when the watch lost changes (compaction) and must start over."""
        self._gap_handlers.append(handler)

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="configsvc-store-watch")

    async def stop(self) -> None:
        tasks = [task for task in (self._task, self._probe) if task is not None]
        self._task = self._probe = None
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def down_for(self) -> float:
        """Seconds the watch has been interrupted (0 while it is up)."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    async def _run(self) -> None:
        delay = self._options.retry_initial
        while True:
            try:
                if not self._started:
                    await self._start_over()
                async for change in self._kv.watch(self._prefix, self._head + 1):
                    delay = self._options.retry_initial
                    self._dispatch(change)
                log.warning("store watch ended; resuming from %d", self._head + 1)
            except asyncio.CancelledError:
                raise
            except WatchCompacted:
                self._gap()
                continue
            except StoreUnavailable as exc:
                log.warning("store watch interrupted (%s); resuming from %d", exc, self._head + 1)
            except Exception:
                log.exception("store watch failed; resuming from %d", self._head + 1)
            self._interrupted()
            await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter
            delay = min(self._options.retry_max, delay * 2)

    def _interrupted(self) -> None:
        """The watch broke: new followers wait (`wait_ready`) until etcd answers a read
        again, which a task of its own finds out (the watch may stay quiet)."""
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._ready.clear()
        if self._started and (self._probe is None or self._probe.done()):
            self._probe = asyncio.create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while self._down_since is not None and self._started:
            try:
                await self._kv.current_revision()
            except StoreUnavailable:
                await asyncio.sleep(self._options.retry_initial)
                continue
            self._back()

    def _back(self) -> None:
        if self._down_since is not None:
            log.info("store watch back after %.1f s", self.down_for())
        self._down_since = None
        self._ready.set()

    async def _start_over(self) -> None:
        self._head = await self._kv.current_revision()
        for handler in self._start_handlers:
            pending = handler(self._head)
            if pending is not None:
                await pending
        self._started = True
        self._back()

    def _gap(self) -> None:
        log.warning("store watch behind compaction at %d; starting over", self._head)
        self._started = False
        self._ready.clear()
        for handler in self._gap_handlers:
            handler()

    def _dispatch(self, change: KeyChange) -> None:
        family, sep, rest = change.key[len(self._prefix) :].decode().partition("/")
        handlers = self._handlers.get(family) if sep else None
        if handlers:
            event = FamilyChange(family, rest, change.value, change.revision)
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    log.exception("a %s handler failed on revision %d", family, change.revision)
        self._head = max(self._head, change.revision)
