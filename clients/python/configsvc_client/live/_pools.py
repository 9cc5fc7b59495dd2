"""Connection pools: one httpx transport per base URL, reused across calls and documents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger("configsvc_client.live")


@dataclass(eq=False, slots=True)
class Pool:
    """The transport of one base URL and the calls currently using it."""

    base_url: str
    transport: httpx.AsyncBaseTransport
    in_flight: int = 0
    retired: bool = False
    closed: bool = False


class Pools:
    """Pools by base URL. A base URL that left the document is closed as soon as the
    calls still using it end; a change of timeouts, key or policy keeps the pool.
    Used from one event loop."""

    def __init__(self, factory: Callable[[str], httpx.AsyncBaseTransport]) -> None:
        self._factory = factory
        self._pools: dict[str, Pool] = {}
        self._wanted: frozenset[str] | None = None

    def acquire(self, base_url: str) -> Pool:
        pool = self._pools.get(base_url)
        if pool is None:
            pool = self._pools[base_url] = Pool(base_url, self._factory(base_url))
        pool.in_flight += 1
        return pool

    async def release(self, pool: Pool) -> None:
        if self.done(pool):
            await pool.transport.aclose()

    def done(self, pool: Pool) -> bool:
        """A call stops using `pool`: True when the caller must now close its transport
        (a retired pool's last call), so that the common case costs no await."""
        pool.in_flight -= 1
        if pool.retired and pool.in_flight == 0 and not pool.closed:
            pool.closed = True
            return True
        return False

    def changed(self, wanted: frozenset[str]) -> bool:
        """Whether `wanted` differs from the set `keep` was last given."""
        return wanted is not self._wanted

    async def keep(self, wanted: frozenset[str]) -> None:
        """Retire the pools of base URLs not in `wanted`."""
        self._wanted = wanted
        for base_url in [url for url in self._pools if url not in wanted]:
            pool = self._pools.pop(base_url)
            pool.retired = True
            log.info("base URL %s left the document; closing its connections", base_url)
            if pool.in_flight == 0:
                pool.closed = True
                await pool.transport.aclose()

    async def aclose(self) -> None:
        """Close every pool; calls still running are not waited for."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            if not pool.closed:
                pool.closed = True
                await pool.transport.aclose()

    def base_urls(self) -> list[str]:
        """The base URLs with an open pool, sorted."""
        return sorted(self._pools)
