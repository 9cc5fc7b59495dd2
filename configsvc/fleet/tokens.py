"""Token records for the report route, read from etcd at most every `ttl` seconds.

Every other route reads the token from etcd on each request. Reports arrive from the whole
fleet (10,000 instances every 30 s are 333 a second), so this route trusts a token record
it read for `ttl` seconds, and forgets it as soon as the store watch shows a change of that
token (its revocation reaches every instance's watch within milliseconds). What a revoked
token may still do in that window: refresh the last-heard time of records it wrote before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import TokenRecord


class CachedTokens:
    """A `TokenLookup` over the store that keeps what it read for `ttl` seconds."""

    def __init__(
        self,
        store: EtcdConfigStore,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._records: dict[str, tuple[TokenRecord, float]] = {}
        self.epoch = 0
        """Moves whenever a token changes: what was read before must not be kept."""

    async def get_token(self, name: str) -> TokenRecord | None:
        held = self._records.get(name)
        now = self._clock()
        if held is not None and now - held[1] < self._ttl:
            return held[0]
        epoch = self.epoch
        record = await self._store.get_token(name)
        if record is None:
            self._records.pop(name, None)
        elif epoch == self.epoch:  # no token changed while it was read
            self._records[name] = (record, now)
        return record

    def forget(self, name: str) -> None:
        """The token `name` changed or was revoked: read it again next time."""
        self.epoch += 1
        self._records.pop(name, None)
