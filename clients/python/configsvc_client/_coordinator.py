"""Coordinator: runs a client's sources, applies what they report, decides where values come from.

One coordinator serves one run of a client (start to stop; a forked child gets a new one
over the same `ConfigState`). The primary synchronizer (the stream) runs throughout and
keeps reconnecting by itself; the fallback (polling) runs only while the primary is not
VALID and is stopped as soon as the primary opens again. Once values are known, a dropped
stream first gets one attempt to resume from the last revision before polling starts: a
resume delivers every change in between (callbacks see each version), where a poll would
jump to the latest. At start, when neither has answered and a cache file exists, the cache
is served (sooner if both already failed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from configsvc_client._cache import CachedState, CacheWriter, SnapshotCache
from configsvc_client._errors import ConfigUnavailable
from configsvc_client._options import ClientOptions
from configsvc_client._runtime import state_lock
from configsvc_client._state import ConfigState, Notification
from configsvc_client._status import ClientStatus, Mode
from configsvc_client._types import SourceErrorInfo, SourceState, Synchronizer, Update

log = logging.getLogger("configsvc_client")

Role = Literal["primary", "fallback"]
_FAILED = (SourceState.INTERRUPTED, SourceState.OFF)
RESUME_ATTEMPTS_BEFORE_POLLING = 1
"""Failed attempts to resume a dropped stream before polling starts (values known)."""


class Coordinator:
    """Feeds `state` from `primary`, falling back to `fallback`, serving `cache` at need."""

    def __init__(
        self,
        state: ConfigState,
        primary: Synchronizer,
        fallback: Synchronizer | None,
        *,
        options: ClientOptions,
        cache: SnapshotCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[], None] | None = None,
    ) -> None:
        self._state = state
        self._sources: dict[Role, Synchronizer | None] = {"primary": primary, "fallback": fallback}
        self._options = options
        self._cache = cache
        self._clock = clock
        self._writer = CacheWriter(cache, state.export) if cache is not None else None
        self._on_state_change = on_state_change
        self._source_state: dict[Role, SourceState] = {
            "primary": SourceState.INITIALIZING,
            "fallback": SourceState.INITIALIZING,
        }
        self._errors: dict[Role, SourceErrorInfo | None] = {"primary": None, "fallback": None}
        self._fresh_at: float | None = None
        self._tasks: dict[Role, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._failure: str | None = None
        self._cached: CachedState | None = None
        self._cache_used = False
        self._written_revision = state.revision
        self._running = False
        self._primary_failures = 0
        """Failures of the primary since it was last VALID."""

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sources (on the running loop); returns at once."""
        if self._cache is not None and not self._state.complete:
            self._cached = await asyncio.to_thread(self._cache.load)
        self._running = True
        if self._state.complete:
            self._fresh_at = None
            self._ready.set()
        self._spawn("primary")
        if self._cached is not None:
            self._background_task(self._cache_timer())

    async def wait_ready(self, within: float) -> None:
        """Return once values are known (from the service or the cache); else raise
        `ConfigUnavailable` after `within` seconds, or at once for a refused token and no
        cache."""
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            reason = self.status().error or "no answer"
            raise ConfigUnavailable(
                f"no configuration within {within:g} s and no cache: {reason}"
            ) from None
        if self._failure is not None:
            raise ConfigUnavailable(f"the service refused the client: {self._failure}")

    async def aclose(self) -> None:
        """Stop the sources, then finish writing the cache."""
        self._running = False
        for source in self._sources.values():
            if source is not None:
                await source.aclose()
        tasks = [*self._tasks.values(), *self._background]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            await self._writer.flush()

    # -- status -----------------------------------------------------------------------

    def status(self) -> ClientStatus:
        mode = self._mode()
        fresh_at = self._fresh_at
        age = None if fresh_at is None else max(0.0, self._clock() - fresh_at)
        cache_error = self._writer.error if self._writer is not None else None
        return ClientStatus(mode, self._state.revision, age, self._error(mode), cache_error)

    def _mode(self) -> Mode:
        if not self._running:
            return Mode.STOPPED
        if self._source_state["primary"] is SourceState.VALID:
            return Mode.STREAMING
        if self._source_state["fallback"] is SourceState.VALID:
            return Mode.POLLING
        return Mode.CACHED if self._state.complete else Mode.CONNECTING

    def _error(self, mode: Mode) -> str | None:
        error: SourceErrorInfo | None = None
        if mode is Mode.POLLING:
            error = self._errors["primary"]
        elif mode is not Mode.STREAMING:
            error = self._errors["primary"] or self._errors["fallback"]
        if error is not None:
            return str(error)
        rejected = self._state.error
        return f"invalid_document: {rejected}" if rejected else None

    # -- sources ----------------------------------------------------------------------

    def _spawn(self, role: Role) -> None:
        source = self._sources[role]
        if source is None or not self._running:
            return
        task = self._tasks.get(role)
        if task is not None and not task.done():
            return
        self._source_state[role] = SourceState.INITIALIZING
        self._errors[role] = None
        self._tasks[role] = asyncio.get_running_loop().create_task(
            self._consume(role, source), name=f"configsvc-{source.name}"
        )

    def _halt(self, role: Role) -> None:
        task = self._tasks.pop(role, None)
        if task is not None:
            task.cancel()
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._source_state[role] = SourceState.INITIALIZING
        self._errors[role] = None

    async def _consume(self, role: Role, source: Synchronizer) -> None:
        try:
            async for update in source.sync(self._state.resume_point):
                self._on_update(role, update)
        except Exception as exc:
            log.exception("config source %s failed", source.name)
            error = SourceErrorInfo("internal_error", f"{source.name}: {type(exc).__name__}: {exc}")
            self._on_update(role, Update(SourceState.OFF, error=error))
        else:
            self._on_update(role, Update(SourceState.OFF))

    def _on_update(self, role: Role, update: Update) -> None:
        notes: list[Notification] = []
        if update.snapshot is not None or update.changes:
            with state_lock():
                notes = self._state.apply(update)
            self._state_changed(bool(notes))
        self._source_state[role] = update.state
        if update.state is SourceState.VALID:
            self._errors[role] = None
            self._fresh_at = self._clock()
        elif update.error is not None:
            self._errors[role] = update.error
            log.info("config source %s: %s", role, update.error)
        if role == "primary":
            if update.state is SourceState.VALID:
                self._primary_failures = 0
                self._halt("fallback")
            else:
                self._primary_failures += 1
                if self._poll_now(update.state):
                    self._spawn("fallback")
        if not self._ready.is_set():
            if self._state.complete:
                self._ready.set()
            elif update.state in _FAILED:
                self._maybe_serve_cache(force=False)
                self._maybe_give_up()
        for note in notes:
            note()

    def _poll_now(self, primary: SourceState) -> bool:
        """Whether the fallback should run: at once while no values are known, for a
        refused stream, or once the stream's attempt to resume has failed too."""
        return (
            not self._state.complete
            or primary is SourceState.OFF
            or self._primary_failures >= RESUME_ATTEMPTS_BEFORE_POLLING + 1
        )

    def _state_changed(self, applied: bool) -> None:
        """After an update with data: something was applied or rejected, or the state moved
        on; write the cache and tell `on_state_change` (called on the loop, must not block)."""
        if not applied and self._state.revision == self._written_revision:
            return
        self._written_revision = self._state.revision
        if self._writer is not None:
            self._writer.mark_dirty()
        if self._on_state_change is not None:
            self._on_state_change()

    # -- start without the service ----------------------------------------------------

    async def _cache_timer(self) -> None:
        await asyncio.sleep(self._options.cache_fallback_after)
        self._maybe_serve_cache(force=True)

    def _maybe_serve_cache(self, *, force: bool) -> None:
        cached = self._cached
        if self._ready.is_set() or self._cache_used or cached is None:
            return
        fallback_failed = (
            self._sources["fallback"] is None or self._source_state["fallback"] in _FAILED
        )
        if not force and not (self._source_state["primary"] in _FAILED and fallback_failed):
            return
        self._cache_used = True
        with state_lock():
            notes = self._state.load(cached)
        self._written_revision = self._state.revision
        self._fresh_at = self._clock() - max(0.0, time.time() - cached.saved_at)
        log.warning(
            "configsvc not reachable: serving cached configuration of revision %s from %s",
            cached.revision,
            self._cache.path if self._cache else "?",
        )
        if self._state.complete:
            self._ready.set()
        for note in notes:
            note()

    def _maybe_give_up(self) -> None:
        """A refused token with no cache will not fix itself before start_timeout."""
        if self._cached is not None:
            return
        primary = self._errors["primary"]
        fallback = self._errors["fallback"]
        if primary is None or not primary.permanent:
            return
        if self._sources["fallback"] is not None and (fallback is None or not fallback.permanent):
            return
        self._failure = str(primary)
        self._ready.set()

    def _background_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
