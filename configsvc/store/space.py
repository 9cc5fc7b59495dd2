"""How full the store is, and whether etcd refuses writes for space (its NOSPACE alarm).

The state is "full" from the first call etcd refuses for space (or a raised NOSPACE alarm
seen by the periodic check) until a write succeeds or the alarm is gone. While full, the
service still reads and streams (plain range reads work); writes answer 507 `store_full`.
A warning is logged once when usage passes `warn_ratio` of the quota, and once on entering
and on leaving the full state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from configsvc.errors import ApiError
from configsvc.metrics import Metrics
from configsvc.store.etcd_client import EtcdKV

log = logging.getLogger("configsvc.space")


@dataclass(frozen=True)
class SpaceOptions:
    quota_bytes: int | None = None
    """etcd's `--quota-backend-bytes`, when known (the embedded default sets it)."""
    check_interval: float = 10.0
    """Seconds between reads of the database size and the NOSPACE alarm."""
    warn_ratio: float = 0.8
    """Usage of the quota past which a warning is logged (once per crossing)."""
    defragment_ratio: float | None = None
    """When set (the embedded default), the member is defragmented once free pages make
    up more than this share of its database file and `defragment_min_bytes`."""
    defragment_min_bytes: int = 64 * 1024 * 1024


class StoreSpace:
    """The store's size and full state, as gauges, a readiness note and log lines."""

    def __init__(self, kv: EtcdKV, metrics: Metrics, options: SpaceOptions) -> None:
        self._kv = kv
        self._metrics = metrics
        self.options = options
        self.full = False
        self.db_bytes: int | None = None
        self.db_in_use_bytes: int | None = None
        self._warned_high = False
        self._task: asyncio.Task[None] | None = None
        kv.space = self
        if options.quota_bytes:
            metrics.store_quota_bytes.set(options.quota_bytes)
        metrics.store_full.set(0)

    def refused_for_space(self) -> None:
        """etcd refused a call for space."""
        if not self.full:
            self.full = True
            self._metrics.store_full.set(1)
            log.warning(
                "the store is full: etcd refuses writes for space (NOSPACE); reads and "
                "streams go on. Free space with `configsvc reclaim --keep N` "
                "(docs/operations.md, 'The store is full')"
            )

    def writable(self) -> None:
        """A write succeeded, or a reclaim cleared the alarm: the store is not full."""
        if self.full:
            self.full = False
            self._metrics.store_full.set(0)
            log.warning("the store takes writes again (no longer full)")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="configsvc-store-space")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        """Read the database size and the NOSPACE alarm once; defragment if due."""
        status = await self._kv.member_status()
        self.db_bytes = int(status.dbSize)
        self.db_in_use_bytes = int(status.dbSizeInUse) or None
        self._metrics.store_db_bytes.set(self.db_bytes)
        if await self._kv.nospace_alarmed():
            self.refused_for_space()
        elif self.full:
            self.writable()
        self._note_usage()
        if self._defragment_due():
            log.info("defragmenting etcd (%d of %d bytes free)", self._free_bytes(), self.db_bytes)
            await self._kv.defragment()

    def _note_usage(self) -> None:
        quota = self.options.quota_bytes
        if not quota or self.db_bytes is None:
            return
        high = self.db_bytes >= self.options.warn_ratio * quota
        if high and not self._warned_high:
            log.warning(
                "etcd's database is %d%% of its quota (%d of %d bytes): trim history "
                "(`configsvc reclaim --keep N`) or raise the quota before writes are refused",
                100 * self.db_bytes // quota,
                self.db_bytes,
                quota,
            )
        self._warned_high = high

    def _free_bytes(self) -> int:
        if self.db_bytes is None or self.db_in_use_bytes is None:
            return 0
        return self.db_bytes - self.db_in_use_bytes

    def _defragment_due(self) -> bool:
        ratio = self.options.defragment_ratio
        if ratio is None or not self.db_bytes:
            return False
        free = self._free_bytes()
        return free > self.options.defragment_min_bytes and free > ratio * self.db_bytes

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except ApiError as exc:
                log.debug("store space check failed: %s", exc.message)
            await asyncio.sleep(self.options.check_interval)
