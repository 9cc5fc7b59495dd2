"""A thin layer over aetcd: connection options, deadlines, and error mapping.

aetcd's high-level methods drop parts of etcd's answers (range limits, response headers of
transactions), so reads and transactions go through its gRPC stubs here, on its connection.
Every call has a deadline; any transport failure becomes `StoreUnavailable` (503), so that a
dead or frozen etcd never hangs a request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aetcd
import aetcd.exceptions
from aetcd import rpc

from configsvc.errors import PayloadTooLarge, StoreFull, StoreUnavailable
from configsvc.store.etcd_channel import EtcdAccessError, EtcdChannels, failure_reason
from configsvc.store.etcd_connection import EtcdConnection

NO_SPACE_DETAIL = "database space exceeded"
"""etcd's message when its NOSPACE alarm refuses a write (and any transaction)."""
COMPACTED_DETAIL = "required revision has been compacted"
STORE_FULL_MESSAGE = (
    "etcd is out of space (its NOSPACE alarm): nothing was written. Free space with "
    "`configsvc reclaim --keep N` (POST /v1/admin/reclaim), or raise etcd's "
    "--quota-backend-bytes; see docs/operations.md, 'The store is full'"
)

DELETE_EVENT = "DELETE"
"""aetcd's name of a deletion event."""


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One change of one key: its new value, or None when it was deleted."""

    key: bytes
    value: bytes | None
    revision: int

    @property
    def deleted(self) -> bool:
        return self.value is None


class SpaceObserver(Protocol):
    """Follows whether etcd takes writes (see `configsvc.store.space.StoreSpace`)."""

    def refused_for_space(self) -> None: ...

    def writable(self) -> None: ...


class _NoObserver:
    def refused_for_space(self) -> None:
        """Nobody follows the store's space."""

    def writable(self) -> None:
        """Nobody follows the store's space."""


class RevisionGone(StoreUnavailable):
    """A read pinned at a revision that etcd has compacted away meanwhile: read again."""


class WatchCompacted(Exception):
    """A watch's start revision was compacted away: read the store afresh, then watch again."""

    def __init__(self, compacted_revision: int) -> None:
        super().__init__(f"revision compacted up to {compacted_revision}")
        self.compacted_revision = compacted_revision


GRPC_OPTIONS: dict[str, Any] = {
    # Notice a frozen etcd (SIGSTOP, network partition) in seconds, not minutes.
    "grpc.keepalive_time_ms": 5000,
    "grpc.keepalive_timeout_ms": 2000,
    "grpc.http2.ping_timeout_ms": 2000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.max_pings_without_data": 0,
    # Come back quickly once etcd is up again (gRPC's default backoff grows to 120 s).
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    # A namespace of many large documents is one range answer.
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
    "grpc.max_send_message_length": 8 * 1024 * 1024,
}


class EtcdKV:
    """Range reads, transactions and watches on one etcd cluster, each under a deadline.

    `endpoints` are `http://` URLs, or an `EtcdConnection` (TLS, user and password, several
    `https://` endpoints: see `etcd_channel`). `revision_key` is the key read for the
    current revision: one under the service's prefix, so that an etcd user allowed only
    that prefix may read it.
    """

    def __init__(
        self,
        endpoints: Sequence[str] | EtcdConnection,
        timeout: float,
        *,
        revision_key: bytes = b"\0",
    ) -> None:
        connection = (
            endpoints if isinstance(endpoints, EtcdConnection) else EtcdConnection.create(endpoints)
        )
        self.timeout = timeout
        self.revision_key = revision_key
        self.connection = connection
        self.channels = EtcdChannels(connection, timeout=timeout, options=GRPC_OPTIONS)
        self.space: SpaceObserver = _NoObserver()
        """Told when etcd refuses a call for space, and when a write succeeds."""

    @property
    def client(self) -> aetcd.Client:
        """The aetcd client in use (with several `https://` endpoints, it may change)."""
        return self.channels.current

    async def close(self) -> None:
        await self.channels.close()

    def members(self) -> list[EtcdKV]:
        """A client of each member of this cluster (maintenance is per member), with the
        same TLS and credentials; close them after use."""
        return [
            EtcdKV(dataclasses.replace(self.connection, endpoints=(endpoint,)), self.timeout)
            for endpoint in self.connection.endpoints
        ]

    async def _call(self, method: str, request: Any, *, maintenance: bool = False) -> Any:
        """One etcd RPC of the KV service (or the Maintenance one), under the deadline."""
        try:
            # gRPC's own deadline bounds the call (an asyncio timeout would cost a timer
            # handle per call for the same bound)
            stub = "maintenancestub" if maintenance else "kvstub"
            return await self.channels.call(stub, method, request)
        except EtcdAccessError as exc:
            raise StoreUnavailable(str(exc)) from None
        except TimeoutError:
            raise StoreUnavailable(f"etcd did not answer within {self.timeout:g} s") from None
        except rpc.AioRpcError as exc:
            raise self._mapped(exc) from None
        except aetcd.exceptions.ClientError as exc:
            raise StoreUnavailable(f"etcd unavailable: {type(exc).__name__}") from None

    def _mapped(self, exc: Any) -> Exception:
        """The service's error for a failed etcd call."""
        details = exc.details() or ""
        if "request is too large" in details:
            return PayloadTooLarge("the write is over etcd's request size limit")
        if NO_SPACE_DETAIL in details:
            self.space.refused_for_space()
            return StoreFull(STORE_FULL_MESSAGE)
        if COMPACTED_DETAIL in details:
            return RevisionGone(details)
        return StoreUnavailable(f"etcd unavailable: {failure_reason(exc)}")

    async def range(
        self,
        key: bytes,
        range_end: bytes | None = None,
        *,
        limit: int = 0,
        descending: bool = False,
        keys_only: bool = False,
        revision: int = 0,
        min_mod_revision: int = 0,
    ) -> Any:
        """A linearizable range read; returns etcd's RangeResponse (header, kvs).

        `revision` > 0 reads the store as it was at that revision (`RevisionGone` once it is
        compacted); `min_mod_revision` keeps only keys changed since then. Plain range reads
        work while etcd is over its space quota, when it refuses every transaction.
        """
        request = rpc.RangeRequest(
            key=key,
            limit=limit,
            keys_only=keys_only,
            revision=revision,
            min_mod_revision=min_mod_revision,
        )
        if range_end is not None:
            request.range_end = range_end
        if descending:
            request.sort_order = rpc.RangeRequest.DESCEND
            request.sort_target = rpc.RangeRequest.KEY
        return await self._call("Range", request)

    async def txn(
        self,
        compare: Sequence[Any],
        success: Sequence[Any],
        failure: Sequence[Any] = (),
        *,
        witness: Any | None = None,
    ) -> Any:
        """One transaction; returns etcd's TxnResponse (succeeded, header, responses).

        etcd APPLIES the write that takes it over its quota, then answers NOSPACE all the
        same (its quota applier). `witness` is one of `success`'s puts whose key no other
        write makes (an audit record's): after a NOSPACE answer it is read back, and if it
        landed, the transaction is answered as the success it was (`succeeded`, and the
        revision in `header`; no `responses`) instead of raising `StoreFull`.
        """
        request = rpc.TxnRequest(
            compare=list(compare), success=list(success), failure=list(failure)
        )
        try:
            return await self._call("Txn", request)
        except StoreFull:
            landed = None if witness is None else await self._landed(witness.request_put)
            if landed is None:
                raise
            return rpc.TxnResponse(succeeded=True, header=rpc.ResponseHeader(revision=landed))

    async def _landed(self, put: Any) -> int | None:
        """The revision at which `put` (a PutRequest) was applied, if its key holds its
        value; None if it did not land."""
        response = await self.range(put.key)
        if response.kvs and response.kvs[0].value == put.value:
            revision: int = response.kvs[0].mod_revision
            return revision
        return None

    async def watch(self, prefix: bytes, start_revision: int) -> AsyncIterator[KeyChange]:
        """Every change of a key under `prefix`, from `start_revision` (never 0), in order.

        Raises `WatchCompacted` when `start_revision` is compacted away, and
        `StoreUnavailable` when etcd goes away or cannot be reached; the caller watches
        again from the last revision it saw + 1.
        """
        if start_revision < 1:
            raise ValueError("watch from an explicit revision; 0 means 'now' to etcd")
        client = self.channels.current
        try:
            async with asyncio.timeout(self.timeout):
                client = await self.channels.connected()
                watch = await client.watch_prefix(prefix, start_revision=start_revision)
            async for event in watch:
                kv = event.kv
                deleted = event.kind == DELETE_EVENT
                yield KeyChange(kv.key, None if deleted else kv.value, kv.mod_revision)
        except aetcd.exceptions.RevisionCompactedError as exc:
            raise WatchCompacted(exc.compacted_revision) from None
        except EtcdAccessError as exc:
            raise StoreUnavailable(str(exc)) from None
        except (TimeoutError, aetcd.exceptions.ClientError, rpc.AioRpcError) as exc:
            await self.channels.after_watch_failure(client, exc)
            if isinstance(exc, TimeoutError):
                raise StoreUnavailable(f"etcd did not answer within {self.timeout:g} s") from None
            if isinstance(exc, aetcd.exceptions.ClientError):
                raise StoreUnavailable(f"etcd watch ended: {type(exc).__name__}") from None
            raise StoreUnavailable(f"etcd watch ended: {exc.code().name}") from None

    async def current_revision(self) -> int:
        """The store's current revision (a cheap linearizable read)."""
        response = await self.range(self.revision_key, limit=1, keys_only=True)
        revision: int = response.header.revision
        return revision

    async def delete_range(self, key: bytes, range_end: bytes | None = None) -> int:
        """Delete keys outside a transaction (etcd allows it while over its space quota);
        returns how many were deleted."""
        request = rpc.DeleteRangeRequest(key=key)
        if range_end is not None:
            request.range_end = range_end
        response = await self._call("DeleteRange", request)
        deleted: int = response.deleted
        return deleted

    async def compact(self, revision: int) -> None:
        """Compact etcd's MVCC history up to `revision`, physically (old revisions' space
        becomes free for reuse, and for a defragment to return)."""
        await self._call("Compact", rpc.CompactionRequest(revision=revision, physical=True))

    async def member_status(self) -> Any:
        """The answering member's `StatusResponse` (dbSize, dbSizeInUse, …)."""
        return await self._call("Status", rpc.StatusRequest(), maintenance=True)

    async def nospace_alarmed(self) -> bool:
        """Whether the cluster's NOSPACE alarm is raised (writes are refused)."""
        request = rpc.AlarmRequest(action=rpc.AlarmRequest.GET, memberID=0, alarm=rpc.NOSPACE)
        response = await self._call("Alarm", request, maintenance=True)
        return any(alarm.alarm == rpc.NOSPACE for alarm in response.alarms)

    async def disarm_nospace(self) -> int:
        """Clear the NOSPACE alarm of every member that raised it (etcd raises it again if
        the member is still over its quota); returns how many were cleared."""
        listed = rpc.AlarmRequest(action=rpc.AlarmRequest.GET, memberID=0, alarm=rpc.NOSPACE)
        response = await self._call("Alarm", listed, maintenance=True)
        cleared = 0
        for alarm in response.alarms:
            if alarm.alarm == rpc.NOSPACE:
                request = rpc.AlarmRequest(
                    action=rpc.AlarmRequest.DEACTIVATE, memberID=alarm.memberID, alarm=rpc.NOSPACE
                )
                await self._call("Alarm", request, maintenance=True)
                cleared += 1
        return cleared

    async def defragment(self) -> None:
        """Defragment the answering member's database (it stalls while it runs)."""
        await self._call("Defragment", rpc.DefragmentRequest(), maintenance=True)


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range that holds every key starting with `prefix`."""
    end = bytearray(prefix)
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


def put_op(key: bytes, value: bytes) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))


def delete_op(key: bytes, range_end: bytes | None = None) -> Any:
    request = rpc.DeleteRangeRequest(key=key)
    if range_end is not None:
        request.range_end = range_end
    return rpc.RequestOp(request_delete_range=request)


def range_op(key: bytes, range_end: bytes | None = None, *, min_mod_revision: int = 0) -> Any:
    """A range read inside a transaction; `min_mod_revision` keeps keys changed since then."""
    request = rpc.RangeRequest(key=key, min_mod_revision=min_mod_revision)
    if range_end is not None:
        request.range_end = range_end
    return rpc.RequestOp(request_range=request)


def mod_revision_is(key: bytes, revision: int) -> Any:
    """A compare that holds when `key`'s last modification is `revision` (0: key absent)."""
    return rpc.Compare(
        key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=revision
    )
