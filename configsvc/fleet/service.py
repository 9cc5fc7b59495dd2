"""FleetService: takes the fleet's reports and keeps the fleet in etcd, for every instance.

* A report that changes nothing of its instance's record costs no store call: the instance's
  last-heard time is noted in memory, and every `publish_interval` this service instance
  writes ONE `Heard` value naming the instances that reported to it since (nothing when it
  heard nothing). Every instance follows those values through the store watch, so each one
  knows when every SDK instance last reported, wherever it reported.
* A report that changes something writes the instance's record (shared transactions, guarded
  by the record's revision): one write per change per SDK instance.
* An open watch stream stands for its SDK instance's periodic report: every
  `stream_check_interval`, an instance whose stream (named with `X-Configsvc-Instance`, opened
  with the token its record was reported with) is open here is noted as heard once per its
  `report_interval`, as if it had reported. The SDK, told so by the stream's answer, then
  reports only changes (and every `VOUCHED_REPORTS_EVERY`-th interval): 10,000 streaming
  instances cost no request between changes. A stream stands for its instance only while
  such a report keeps coming (`FleetView.vouches`), and `Heard` says which instances were
  heard of through their streams, so every service instance can tell.
* Every `sweep_interval` each service instance deletes the records of SDK instances silent
  for `MISSED_REPORTS` intervals (plus grace and its own jitter, so that usually one acts;
  the deletes are guarded, so two acting is harmless), and `Heard` values of service
  instances that stopped.
* Records are plain keys: a service restart loses none; a new instance loads the fleet from
  etcd (and again whenever its store watch starts over).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from configsvc_schemas.wire import (
    FLEET_REPORTS_PATH,
    INSTANCE_SUFFIX_BYTES,
    MAX_FLEET_INSTANCES,
    Role,
    make_instance_id,
)

from configsvc.auth import Authenticator, Principal
from configsvc.auth_throttle import AuthThrottle
from configsvc.errors import ApiError, Conflict, Forbidden, NotFound, StoreUnavailable
from configsvc.fleet.answers import FleetAnswers
from configsvc.fleet.heard import Unpublished
from configsvc.fleet.report import check_scope, parse_report
from configsvc.fleet.streams import StreamHeartbeats
from configsvc.fleet.tokens import CachedTokens
from configsvc.fleet.view import MS, FleetView, Member
from configsvc.fleet.writer import RecordWriter
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.fleet import FleetRecord, FleetStore, Heard, RecordChange
from configsvc.store.keys import FLEET_FAMILY, TOKEN_FAMILY
from configsvc.store.records import utc_now
from configsvc.store.watcher import ChangeFeed, FamilyChange

log = logging.getLogger("configsvc.fleet")

DIGEST_BYTES = 16
MAX_CALLERS = 10_000
"""Distinct tokens whose principal the report route holds (then it starts afresh)."""
MAX_HEARD_BYTES = 512 * 1024
"""The size of one `Heard` write, well under etcd's request limit (1.5 MiB by default): a
burst of more goes in several. 10,000 instances with 53-character ids are about 700 KB when
heard of through their streams (named twice), so about two writes."""


@dataclass(frozen=True)
class FleetOptions:
    """Timers of the fleet service, in seconds."""

    publish_interval: float = 0.5
    """Between writes of what this instance heard (none when it heard nothing)."""
    sweep_interval: float = 0.25
    """Between looks for silent SDK instances."""
    stream_check_interval: float = 1.0
    """Between looks at the open watch streams that stand for their instances' reports."""
    grace: float = 0.75
    """Added to every silence deadline: how late another instance's `Heard` may arrive."""
    jitter: float = 0.3
    """Each service instance's own spread (0 to this) of the silence deadlines."""
    heard_stale: float = 60.0
    """A `Heard` value this old is of a service instance that stopped: it is deleted."""
    token_ttl: float = 30.0
    """How long the report route trusts a token record it read (see `CachedTokens`)."""
    batch_delay: float = 0.005
    """How long a changed record waits for others to share its transaction."""
    write_attempts: int = 8
    """Rounds a report retries when its record moved on meanwhile (then 503)."""
    max_instances: int = MAX_FLEET_INSTANCES
    """SDK instances the fleet may hold; a report of one more is refused (503)."""
    max_heard_bytes: int = MAX_HEARD_BYTES
    """The size of one `Heard` write; a burst of more goes in several."""
    load_retry: float = 0.5
    """Between attempts to load the fleet when etcd does not answer."""
    stop_timeout: float = 2.0
    """At shutdown: how long writing what was heard last may take."""


def wall_ms() -> int:
    return int(time.time() * MS)


def new_service_id() -> str:
    """This service instance's id, made like an SDK instance's default id."""
    suffix = secrets.token_hex(INSTANCE_SUFFIX_BYTES)
    return make_instance_id(socket.gethostname(), os.getpid(), suffix)


def body_digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest()


class FleetService:
    """The fleet as one service instance serves it: reports in, records and `Heard` out."""

    def __init__(
        self,
        store: FleetStore,
        documents: EtcdConfigStore,
        registry: KindRegistry,
        admin_token: str,
        metrics: Metrics,
        options: FleetOptions | None = None,
        *,
        service_id: str | None = None,
        clock_ms: Callable[[], int] = wall_ms,
        throttle: AuthThrottle | None = None,
    ) -> None:
        self.options = options or FleetOptions()
        self.service_id = service_id or new_service_id()
        self.store = store
        self.tokens = CachedTokens(documents, self.options.token_ttl)
        self._auth = Authenticator(self.tokens, admin_token, throttle)
        self._callers: dict[bytes, tuple[Principal, float]] = {}
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.view = FleetView(
            self.service_id,
            jitter_ms=int(self.options.jitter * MS),
            grace_ms=int(self.options.grace * MS),
        )
        self.answers = FleetAnswers(self.view, documents, registry)
        self._writer = RecordWriter(store, self.options.batch_delay)
        self._results = {
            result: metrics.fleet_reports.labels(result)
            for result in ("unchanged", "changed", "refused", "streamed")
        }
        self._answered = metrics.requests.labels("POST", FLEET_REPORTS_PATH, "204")
        self._unpublished = Unpublished()
        self._tasks: list[asyncio.Task[None]] = []
        self._load_task: asyncio.Task[None] | None = None
        self._streams = StreamHeartbeats()

    # -- lifecycle ----------------------------------------------------------------------

    def follow(self, watcher: ChangeFeed) -> None:
        """Keep the view current from `watcher` (call before the watcher starts)."""
        watcher.on(FLEET_FAMILY, self.view.apply)
        watcher.on(TOKEN_FAMILY, self._token_changed)
        watcher.on_start(self._load)

    def stream_opened(self, instance: str, token_name: str) -> None:
        """A watch stream naming `instance` opened here with the token `token_name`: it may
        stand for the instance's periodic reports (see `_streamed`)."""
        self._streams.opened(instance, token_name, self.clock_ms())

    def stream_closed(self, instance: str, token_name: str) -> None:
        self._streams.closed(instance, token_name)

    def start(self) -> None:
        options = self.options
        self._tasks = [
            asyncio.create_task(self._every(options.publish_interval, self._publish)),
            asyncio.create_task(self._every(options.sweep_interval, self._sweep)),
            asyncio.create_task(self._every(options.stream_check_interval, self._streamed)),
        ]

    async def stop(self) -> None:
        """Stop the timers; write what was heard last, and remove this instance's `Heard`."""
        tasks = [*self._tasks, *([self._load_task] if self._load_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._load_task = [], None
        with contextlib.suppress(ApiError, TimeoutError):
            async with asyncio.timeout(self.options.stop_timeout):
                await self._writer.close()
                await self._publish()
                await self.store.delete_heard(self.service_id)

    def _load(self, _revision: int) -> None:
        """The store watch (re)started: load the fleet afresh; hold its changes meanwhile."""
        if self._load_task is not None:
            self._load_task.cancel()
        self.view.begin_load()
        self._load_task = asyncio.create_task(self._load_until_done(), name="configsvc-fleet-load")

    async def _load_until_done(self) -> None:
        while True:
            try:
                snapshot = await self.store.load()
            except StoreUnavailable as exc:
                log.warning("cannot load the fleet (%s); retrying", exc)
                await asyncio.sleep(self.options.load_retry)
                continue
            self.view.finish_load(snapshot, self.clock_ms())
            return

    def _token_changed(self, change: FamilyChange) -> None:
        self.tokens.forget(change.key)
        self._callers.clear()
        self.view.forget_confirmations()

    async def authenticate(self, authorization: str | None, origin: str | None = None) -> Principal:
        """The caller of a report from `origin` (see `CachedTokens`: a token is trusted for
        `token_ttl` seconds, and forgotten as soon as the store watch shows it changed;
        refused tokens count towards the address's throttle, as on every route)."""
        key = hashlib.sha256(authorization.encode()).digest() if authorization else b""
        held = self._callers.get(key)
        now = time.monotonic()
        if held is not None and now - held[1] < self.options.token_ttl:
            return held[0]
        epoch = self.tokens.epoch
        principal = await self._auth.authenticate(authorization, origin)
        if epoch != self.tokens.epoch:  # a token changed meanwhile: keep nothing
            return principal
        if len(self._callers) >= MAX_CALLERS:
            self._callers.clear()
        self._callers[key] = (principal, now)
        return principal

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except ApiError as exc:
                log.info("fleet: %s (retrying)", exc.message)
            except Exception:
                log.exception("fleet: a periodic job failed")

    # -- reports ------------------------------------------------------------------------

    def accept_known(self, caller: Principal, digest: bytes) -> bool:
        """Take a report whose exact bytes this instance already found equal to its record
        (from the same token): note when it was heard; True when that was all to do."""
        member = self.view.confirmed_member(digest)
        if member is None or member.record.token != caller.name:
            return False
        self._heard(member.instance)
        self.count("unchanged")
        return True

    async def receive(self, caller: Principal, body: Any, digest: bytes) -> None:
        """Take a report (parsed JSON); raise `ApiError` to refuse it (nothing is kept)."""
        report = parse_report(body)
        check_scope(caller, report)
        member = self.view.get(report.instance)
        if member is None and len(self.view.members) >= self.options.max_instances:
            raise StoreUnavailable(
                f"the fleet holds its maximum of {self.options.max_instances:,} instances"
            )
        current = member.record if member is not None else None
        for _attempt in range(self.options.write_attempts):
            if current is not None and current.token != caller.name:
                raise Conflict(
                    f"instance {report.instance!r} is reported with another token; each "
                    "instance reports with one token (a new process gets a new instance id)"
                )
            if current is not None and current.content == report.content:
                self.count("unchanged")
                break
            record = FleetRecord(report.instance, caller.name, report.content, utc_now())
            expected = current.revision if current is not None else 0
            change = RecordChange.put(record, expected)
            revision = await self._writer.submit(change)
            if revision is not None:
                self.view.put(dataclasses.replace(record, revision=revision))
                self._count_write("record", len(change.value or b""))
                self.count("changed")
                break
            current = await self.store.read_record(report.instance)
        else:
            raise StoreUnavailable(f"the record of {report.instance} kept changing; report again")
        self._heard(report.instance)
        self.view.confirm(report.instance, report.content_bytes, caller.name, digest)

    async def goodbye(self, caller: Principal, instance: str) -> None:
        """Remove the record of `instance` at once: its own token, or the admin, may."""
        for _attempt in range(self.options.write_attempts):
            record = await self.store.read_record(instance)
            if record is None:
                raise NotFound(f"no instance {instance!r} in the fleet")
            if record.token != caller.name and caller.role is not Role.ADMIN:
                raise Forbidden(f"instance {instance!r} is reported with another token")
            revision = await self._writer.submit(RecordChange.delete(instance, record.revision))
            if revision is not None:
                self.view.remove(instance, revision)
                self._unpublished.forget(instance)
                self._count_write("delete", 0)
                return
        raise StoreUnavailable(f"the record of {instance} kept changing; try again")

    def count(self, result: str) -> None:
        """A report was taken (`unchanged`, `changed`) or `refused`."""
        self._results[result].inc()

    def count_answered(self) -> None:
        """A report was answered 204 (the service's request counter)."""
        self._answered.inc()

    def _heard(self, instance: str, *, streamed: bool = False) -> None:
        """Note `instance` heard of now: a report, or (`streamed`) its open stream."""
        now = self.clock_ms()
        self.view.note_seen(instance, now, streamed=streamed)
        self._unpublished.note(instance, now, streamed=streamed)

    # -- timers -------------------------------------------------------------------------

    async def _streamed(self) -> None:
        """Note as heard, once per its report interval, each instance whose watch stream is
        open here with the token its record was reported with (another token's stream that
        names it keeps nothing alive), while `FleetView.vouches` for it. Only the streams
        due are looked at; each is put back for when it is due again."""
        now = self.clock_ms()
        check = int(self.options.stream_check_interval * MS)
        for instance, token in self._streams.due(now):
            member = self.view.get(instance)
            if member is None or member.record.token != token or not self.view.vouches(member, now):
                self._streams.later(instance, token, now + check)  # no report yet, or frozen
                continue
            if now - member.seen_ms >= member.interval_ms - check:
                self._heard(instance, streamed=True)
                self.count("streamed")
            next_at = member.seen_ms + member.interval_ms - check
            self._streams.later(instance, token, max(next_at, now + check))

    async def _publish(self) -> None:
        """Write what this instance heard since its previous write (nothing: no write)."""
        if not self._unpublished:
            return
        seen, streamed = self._unpublished.take(self.options.max_heard_bytes)
        heard = Heard(self.service_id, self.clock_ms(), seen, streamed=streamed)
        try:
            size = await self.store.put_heard(heard)
        except ApiError:
            self._unpublished.put_back(heard)
            raise
        self._count_write("heard", size)

    async def _sweep(self) -> None:
        """Delete the records of silent SDK instances, and `Heard` values of stopped
        service instances."""
        now = self.clock_ms()
        due: list[Member] = self.view.due(now)
        if due:
            changes = [RecordChange.delete(m.instance, m.record.revision) for m in due]
            results = await self.store.apply(changes)
            for member, revision in zip(due, results, strict=True):
                if revision is not None:
                    log.info("fleet: %s stopped reporting; removed", member.instance)
                    self.view.remove(member.instance, revision)
                    self._count_write("delete", 0)
        for heard in self.view.stale_heard(now, int(self.options.heard_stale * MS)):
            if await self.store.delete_heard(heard.service, heard.revision):
                self._count_write("delete", 0)

    def _count_write(self, what: str, size: int) -> None:
        self.metrics.fleet_store_writes.labels(what).inc()
        self.metrics.fleet_store_bytes.inc(size)
