"""RecordWriter: record changes made close together share etcd transactions.

After an edit every instance of the fleet reports within about a second; one transaction
per report would cost etcd a request each. Changes submitted while a transaction is under
way, or within `delay` of the first, go together in the next one (the store splits large
groups); each submitter still gets its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib

from configsvc.store.fleet import FleetStore, RecordChange


class RecordWriter:
    """Applies `RecordChange`s in shared transactions (one group in flight at a time)."""

    def __init__(self, store: FleetStore, delay: float) -> None:
        self._store = store
        self._delay = delay
        self._pending: list[tuple[RecordChange, asyncio.Future[int | None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, change: RecordChange) -> int | None:
        """The revision `change` was applied at; None when its guard failed (the record had
        moved on). Raises `StoreUnavailable` when etcd does not answer."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append((change, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="configsvc-fleet-writer")
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(self._delay)
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._store.apply([change for change, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Wait for what is under way (its submitters are answered)."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
