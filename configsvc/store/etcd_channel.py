"""The gRPC channels to etcd, secure or not, with etcd's auth token and failover.

`EtcdConnection` (`etcd_connection`) says what to reach and with what; this module reaches
it. aetcd 1.0 only opens plain-text channels, so `ChannelClient` opens its channel itself and
hands it to aetcd's stubs and watcher; everything else (keep-alive options, deadlines, the
watch) stays as it is. What this module guarantees:

- An `https://` endpoint is only ever dialled over TLS: its channel is a secure one or
  nothing. A plain-text server behind it fails the handshake; it is never spoken to in
  clear. Without a CA file, the certificates are checked against the system's trusted roots.
- Host names stay verified with several endpoints. A gRPC channel checks a server's
  certificate against one name, its target's, and the multi-address target (`ipv4:a,b,c`)
  that plain-text endpoints share carries no name at all. So each `https://` endpoint gets
  a channel of its own, named as the operator wrote it, and `EtcdChannels` moves to the
  next one when the one in use fails (no `ssl_target_name_override`: it would check every
  member against one name). One `https://` name that resolves to every member (e.g. a
  Kubernetes Service) is one channel that fails over between the addresses by itself.
- With a user and password, each channel authenticates once and keeps etcd's token; when
  etcd no longer knows it (the token expired after `--auth-token-ttl` of disuse, or the
  member restarted), the token is renewed and the call tried once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aetcd
import aetcd.exceptions
import grpc
from aetcd import rpc, watcher

from configsvc.errors import ConfigsvcError
from configsvc.store.etcd_connection import EtcdAuth, EtcdConnection, EtcdTls

Metadata = tuple[tuple[str, str], ...]

RENEW_TOKEN_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED})
RENEW_TOKEN_MESSAGES = ("invalid auth token", "auth store is old", "user name is empty")
"""etcd's answers to a request whose auth token it no longer accepts (any status code)."""
FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Answers after which the next endpoint is tried (when each endpoint has its own channel)."""


class EtcdAccessError(ConfigsvcError):
    """etcd refused the service's credentials (user, password): the operator must act."""


class WatchCanceled(aetcd.exceptions.ClientError):  # type: ignore[misc]
    """etcd canceled a watch (e.g. `permission denied`, which is also what a watch created
    with an expired auth token gets)."""


class _Watcher(watcher.Watcher):  # type: ignore[misc]
    """aetcd's watcher, which ignores canceled watches (its iterator then waits forever):
    here a cancellation by etcd ends the watch with `WatchCanceled`."""

    async def _handle_response(self, response: Any) -> None:
        if not response.canceled or response.compact_revision != 0:
            await super()._handle_response(response)  # aetcd handles compaction itself
            return
        error = WatchCanceled(response.cancel_reason or "etcd canceled the watch")
        async with self._lock:
            if response.created and self._new_callback is not None:
                self._new_callback.error = error
                self._new_callback_ready.notify_all()
                return
            callback = self._callbacks.pop(response.watch_id, None)
        if callback is not None:  # None: the answer to our own cancel request
            await self._process_callback(callback, error)


def open_channel(target: str, tls: EtcdTls | None, options: Mapping[str, Any]) -> grpc.aio.Channel:
    """A channel to `target`: secure when `tls` is given (never plain text then)."""
    if tls is not None:
        return grpc.aio.secure_channel(target, tls.credentials(), options=list(options.items()))
    return grpc.aio.insecure_channel(target, options=list(options.items()))


class ChannelClient(aetcd.Client):  # type: ignore[misc]
    """aetcd's client on a channel opened by `open_channel`, with a renewable auth token.

    Replaces `aetcd.Client.connect` (which only opens plain-text channels); the stubs,
    watcher and calls are aetcd's (tested on aetcd 1.0).
    """

    def __init__(
        self,
        target: str,
        tls: EtcdTls | None,
        auth: EtcdAuth | None,
        *,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        super().__init__(
            timeout=int(max(1, timeout)),
            options=dict(options),
            connect_wait_timeout=int(max(1, timeout)),
        )
        self.target = target
        self._tls = tls
        self._auth = auth
        self._call_timeout = timeout
        self._connecting = asyncio.Lock()
        self._renewing = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return bool(self._connected.is_set())

    @property
    def uses_auth(self) -> bool:
        """Whether calls carry an auth token (a user and password were given)."""
        return self._auth is not None

    async def connect(self) -> None:
        """Open the channel and authenticate. Concurrent callers wait for one attempt, and
        each makes its own if that one failed (so that each sees the real error, where
        aetcd's waiters would see only a timeout)."""
        if self._connected.is_set():
            return
        async with self._connecting:
            if self._connected.is_set():
                return
            channel = open_channel(self.target, self._tls, self._options)
            try:
                metadata = await self._authenticate(channel)
            except BaseException:
                await channel.close()
                raise
            self.channel = channel
            self.auth_stub = rpc.AuthStub(channel)
            self.kvstub = rpc.KVStub(channel)
            self.clusterstub = rpc.ClusterStub(channel)
            self.leasestub = rpc.LeaseStub(channel)
            self.maintenancestub = rpc.MaintenanceStub(channel)
            self._use_token(metadata)
            self._connected.set()

    async def close(self) -> None:
        """Close the channel (after a connection attempt under way)."""
        async with self._connecting:
            await super().close()

    async def renew_token(self, used: Metadata | None) -> None:
        """Authenticate again, unless another caller did since `used` was sent.

        The watcher is replaced, so that watches opened from now on carry the new token;
        those open on the old one end, and their owners watch again.
        """
        async with self._renewing:
            if self.metadata is not used or self.channel is None:
                return
            metadata = await self._authenticate(self.channel)
            old = self._watcher
            self._use_token(metadata)
            if old is not None:
                await old.shutdown()

    def _use_token(self, metadata: Metadata | None) -> None:
        self.metadata = metadata
        self._watcher = _Watcher(
            rpc.WatchStub(self.channel), timeout=self._timeout, metadata=metadata
        )

    async def _authenticate(self, channel: grpc.aio.Channel) -> Metadata | None:
        """etcd's token for our user as call metadata (None without auth)."""
        if self._auth is None:
            return None
        request = rpc.AuthenticateRequest(name=self._auth.user, password=self._auth.password)
        try:
            answer = await rpc.AuthStub(channel).Authenticate(request, timeout=self._call_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in FAILOVER_CODES:
                raise
            raise EtcdAccessError(
                f"etcd refused user {self._auth.user!r}: {exc.details() or exc.code().name}"
            ) from None
        return (("token", answer.token),)


def rpc_error_of(exc: BaseException) -> grpc.aio.AioRpcError | None:
    """The gRPC error behind `exc` (aetcd wraps them in its own exceptions)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, grpc.aio.AioRpcError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def token_rejected(exc: BaseException) -> bool:
    """Whether etcd refused a call because it no longer accepts our auth token."""
    error = rpc_error_of(exc)
    if error is None:
        return False
    details = (error.details() or "").lower()
    return error.code() in RENEW_TOKEN_CODES or any(m in details for m in RENEW_TOKEN_MESSAGES)


def failure_reason(exc: grpc.aio.AioRpcError) -> str:
    """A few words on why a call failed: its status, and what a TLS handshake said."""
    status: str = exc.code().name
    details: str = exc.details() or ""
    if "user name is empty" in details:
        return f"{status}, etcd has auth enabled: give --etcd-user and --etcd-password"
    if "hostname verification" in details.lower():
        return f"{status}, TLS: the member's certificate is not for the host name given"
    if "handshake" not in details.lower():
        return status
    reason = details.rsplit("OPENSSL_internal:", 1)[-1].removesuffix(": OK")
    if reason == details:  # no OpenSSL reason: the peer closed the connection
        reason = "the server closed the connection (does it speak TLS?)"
    return f"{status}, TLS handshake failed: {reason}"


def _read_only(method: str, request: Any) -> bool:
    """Whether the KV call only reads (safe to send again to another member)."""
    if method == "Range":
        return True
    if method != "Txn":
        return False
    operations = [*request.success, *request.failure]
    return all(op.WhichOneof("request") == "request_range" for op in operations)


def is_transport_failure(exc: BaseException) -> bool:
    """Whether `exc` says the member did not answer (rather than answering no)."""
    if isinstance(
        exc,
        TimeoutError
        | aetcd.exceptions.ConnectionFailedError
        | aetcd.exceptions.ConnectionTimeoutError
        | aetcd.exceptions.WatchTimeoutError,
    ):
        return True
    error = rpc_error_of(exc)
    return error is not None and error.code() in FAILOVER_CODES


class EtcdChannels:
    """The clients of one etcd cluster (one per channel) and which one is in use.

    With one channel there is nothing to choose. With several (several `https://`
    endpoints), a call that finds its member unreachable moves the service to the next
    one; the call itself still fails (503), and its caller's retry goes to the next member.
    """

    def __init__(
        self, connection: EtcdConnection, *, timeout: float, options: Mapping[str, Any]
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self.clients = [
            ChannelClient(target, connection.tls, connection.auth, timeout=timeout, options=options)
            for target in connection.targets()
        ]
        self._index = 0

    @property
    def current(self) -> ChannelClient:
        return self.clients[self._index]

    async def connected(self) -> ChannelClient:
        """The client in use, connected (under the call deadline)."""
        client = self.current
        if not client.connected:
            try:
                async with asyncio.timeout(self.timeout):
                    await client.connect()
            except (TimeoutError, grpc.aio.AioRpcError, aetcd.exceptions.ClientError):
                self.after_failure(client)
                raise
        return client

    async def call(self, stub: str, method: str, request: Any) -> Any:
        """`stub.method(request)` on the client in use, under the deadline.

        A refused auth token is renewed and the call made once more. A read that finds its
        member unreachable is tried on the next one (a write is not: its outcome is unknown).
        """
        attempts = len(self.clients) if _read_only(method, request) else 1
        for attempt in range(1, attempts + 1):
            client = await self.connected()
            try:
                return await self._call_on(client, stub, method, request)
            except grpc.aio.AioRpcError as exc:
                self.after_failure(client, exc)
                if attempt == attempts or exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_on(self, client: ChannelClient, stub: str, method: str, request: Any) -> Any:
        metadata = client.metadata
        call = getattr(getattr(client, stub), method)
        try:
            return await call(request, timeout=self.timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if not (client.uses_auth and token_rejected(exc)):
                raise
        await client.renew_token(metadata)
        return await call(request, timeout=self.timeout, metadata=client.metadata)

    def after_failure(self, client: ChannelClient, exc: BaseException | None = None) -> None:
        """Move on to the next channel if `client` (still the one in use) did not answer."""
        if len(self.clients) == 1 or client is not self.current:
            return
        if exc is None or is_transport_failure(exc):
            self._index = (self._index + 1) % len(self.clients)

    async def after_watch_failure(self, client: ChannelClient, exc: BaseException) -> None:
        """Prepare the next watch: a new token if etcd refused ours, else maybe failover."""
        if client.uses_auth and (token_rejected(exc) or isinstance(exc, WatchCanceled)):
            try:
                await client.renew_token(client.metadata)
            except (grpc.aio.AioRpcError, EtcdAccessError, TimeoutError):
                self.after_failure(client)
            return
        self.after_failure(client, exc)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
