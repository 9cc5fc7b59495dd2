"""The rollouts' clock: every service instance takes each due step and each automatic abort.

The scheduler knows every active rollout (loaded when the store watch starts, then kept
current by it). It wakes when a step is due, and every `check_interval` to look at the
fleet's reports of rollouts with an `abort_on`. Every instance does the same; the store's
compare-and-set on the rollout record lets one of them write each transition, and the
others find the record moved on (nothing to do). A transition the store refuses is tried
again at the next wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from configsvc.errors import ApiError, ValidationFailed
from configsvc.fleet.service import FleetService
from configsvc.rollouts import transitions
from configsvc.rollouts.signals import Reported, abort_reason
from configsvc.store.keys import ROLLOUT_FAMILY
from configsvc.store.rollout_record import RolloutRecord, RolloutState
from configsvc.store.rollouts import CandidateCheck, Clock, RolloutStore, wall_clock
from configsvc.store.watcher import ChangeFeed, FamilyChange

log = logging.getLogger("configsvc.rollouts")

Members = Callable[[str], Iterable[Reported]]
"""The fleet's instances that report document `ns/name`."""
Checks = Callable[[RolloutRecord], CandidateCheck | None]
"""How a rollout's candidate is validated when it is promoted (its kind as stored then)."""


@dataclass(frozen=True)
class SchedulerOptions:
    check_interval: float = 1.0
    """Seconds between looks at the fleet's reports (and the longest sleep)."""


def fleet_members(fleet: FleetService) -> Members:
    """`Members` from the fleet as this service instance knows it."""

    def members(key: str) -> list[Reported]:
        return [Reported(m.instance, m.record.content) for m in fleet.view.reporting(key)]

    return members


class RolloutScheduler:
    """Steps, last-step promotions and automatic aborts of the active rollouts."""

    def __init__(
        self,
        store: RolloutStore,
        members: Members,
        checks: Checks,
        options: SchedulerOptions | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self.store = store
        self.options = options or SchedulerOptions()
        self._members = members
        self._checks = checks
        self._clock = clock
        self._active: dict[tuple[str, str], RolloutRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> list[RolloutRecord]:
        return list(self._active.values())

    def follow(self, feed: ChangeFeed) -> None:
        """Keep the active rollouts current from `feed` (call before it starts)."""
        feed.on(ROLLOUT_FAMILY, self._on_change)
        feed.on_start(self._load)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="configsvc-rollouts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load(self, _revision: int) -> None:
        _revision_read, records = await self.store.all()
        self._active = {(r.namespace, r.name): r for r in records if r.state.active}
        self._wake.set()

    def _on_change(self, change: FamilyChange) -> None:
        ns, _, name = change.key.partition("/")
        if change.value is None:
            self._active.pop((ns, name), None)
            return
        record = RolloutRecord.from_stored(ns, name, change.value, change.revision)
        if record.state.active:
            self._active[(ns, name)] = record
        else:
            self._active.pop((ns, name), None)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep_for(self._clock())):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("rollouts: a round of the scheduler failed")

    def _sleep_for(self, now: datetime) -> float:
        """Until the next due step, at most `check_interval` seconds."""
        sleep = self.options.check_interval
        for record in self._active.values():
            due = record.next_step_at()
            if due is not None:
                sleep = min(sleep, max(0.0, (due - now).total_seconds()))
        return sleep

    async def tick(self) -> None:
        """Take every transition due now (one round)."""
        for record in list(self._active.values()):
            try:
                await self._advance(record)
            except ApiError as exc:
                log.info("rollouts: %s: %s (trying again)", record.key, exc.message)

    async def _advance(self, record: RolloutRecord) -> None:
        reason = abort_reason(record, self._members(record.key))
        if reason is not None:
            log.warning("rollouts: aborting %s version %d: %s", record.key, record.version, reason)
            await self._abort(record, reason)
            return
        if record.state is not RolloutState.RUNNING:
            return
        if transitions.step_due(record, self._clock()) is None:
            return
        try:
            await self.store.transition(
                record.namespace,
                record.name,
                transitions.step_due,
                author=transitions.AUTOMATIC,
                expected_revision=record.revision,
                check=self._checks(record),
            )
        except ValidationFailed as exc:
            await self._abort(record, f"version {record.version} no longer fits: {exc.message}")

    async def _abort(self, record: RolloutRecord, reason: str) -> None:
        def decide(current: RolloutRecord, now: datetime) -> RolloutRecord | None:
            if not current.state.active:
                return None
            return transitions.abort(current, now, transitions.AUTOMATIC, reason)

        await self.store.transition(
            record.namespace,
            record.name,
            decide,
            author=transitions.AUTOMATIC,
            expected_revision=record.revision,
        )
