"""The process-wide pieces of the sync face: one event-loop thread, fork handling.

Every client started with `start()` runs on one shared daemon thread with its own event
loop (hundreds of clients cost one thread). After `os.fork()` the child has no such
thread: the fork hook gives the child a new one and restarts each client that was
running, keeping its last values, so pre-fork servers (gunicorn --preload) get live
clients in their workers.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

THREAD_NAME = "configsvc-client"
EXIT_TIMEOUT = 2.0
"""Seconds the interpreter's exit waits for running clients to stop and flush their cache."""


class Runtime:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; the future completes in the caller's thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def in_thread(self) -> bool:
        """True when called from the loop's own thread."""
        return threading.current_thread() is self._thread

    def close(self, clients: list[ForkAware], timeout: float) -> None:
        """Stop `clients` (bounded by `timeout`), then the loop and its thread."""

        async def close_all() -> None:
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

        if clients:
            with contextlib.suppress(Exception):
                self.submit(close_all()).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...

    async def aclose(self) -> None: ...


class _Process:
    """What one process shares: the runtime, the state lock, the clients to restart."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.guard = threading.Lock()
        self.state_lock = threading.RLock()
        self.io_lock = threading.Lock()
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.abandoned: list[Any] = []


_process = _Process()


def shared_runtime() -> Runtime:
    """This process's runtime, started on first use (again in a forked child)."""
    with _process.guard:
        if _process.runtime is None:
            _process.runtime = Runtime()
        return _process.runtime


def state_lock() -> threading.RLock:
    """Held while a client changes its applied state; a fork waits for it, so a child
    never inherits a half-applied update. Readers from other threads take it too."""
    return _process.state_lock


def io_lock() -> threading.Lock:
    """Held while a cache file is written; a fork waits for it, so a child never inherits
    a half-written temp file or a locked descriptor of the parent's."""
    return _process.io_lock


def register_for_fork(client: ForkAware) -> None:
    """Restart `client` in a forked child (held weakly)."""
    _process.clients.add(client)


def unregister_for_fork(client: ForkAware) -> None:
    _process.clients.discard(client)


def _before_fork() -> None:
    _process.state_lock.acquire()
    _process.io_lock.acquire()


def _after_fork_in_parent() -> None:
    _process.io_lock.release()
    _process.state_lock.release()


def _after_fork_in_child() -> None:
    global _process
    old = _process
    _process = _Process()
    # The parent's loop, sockets and threads are not ours: keep them referenced and
    # untouched, so that no finaliser closes or writes on a connection the parent owns.
    _process.abandoned = [*old.abandoned, old.runtime, old.state_lock, old.io_lock]
    for client in list(old.clients):
        client._after_fork_in_child()


def _at_exit() -> None:
    """Stop the clients still running at interpreter exit, so that their last values
    reach the cache and no task is destroyed pending."""
    runtime, _process.runtime = _process.runtime, None
    if runtime is not None:
        runtime.close(list(_process.clients), EXIT_TIMEOUT)


atexit.register(_at_exit)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
