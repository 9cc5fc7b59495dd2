"""One HTTP client per event loop and TLS setting, one SSL context per TLS setting.

Creating an `httpx.AsyncClient` loads the CA bundle (~70 ms); hundreds of config clients
in one process share one instead: one per event loop for each distinct TLS setting (the
default bundle, a `ca=` file, an SSL context of the caller's). The shared client has no
connection limit (each open stream holds a connection) and is closed when the last client
on its loop releases it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import weakref
from collections.abc import Hashable

import httpx

from configsvc_client._options import DEFAULT_TLS, TlsOptions

MAX_KEEPALIVE_CONNECTIONS = 32
KEEPALIVE_EXPIRY = 5.0
DEFAULT_TIMEOUT = 10.0
"""Only for requests that give none; every request of the sources gives its own."""


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ssl_contexts: dict[Hashable, ssl.SSLContext] = {}
        self.pid = os.getpid()
        self.clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, _Lease]
        ] = weakref.WeakKeyDictionary()


class _Lease:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.users = 0


_shared = _Shared()
_abandoned: list[_Shared] = []


def _current() -> _Shared:
    global _shared
    if _shared.pid != os.getpid():
        # A forked child: the parent's clients hold the parent's connections. Keep them
        # referenced and unused, so that no finaliser touches those sockets.
        _abandoned.append(_shared)
        contexts = _shared.ssl_contexts  # no connection state: fine to reuse after fork
        _shared = _Shared()
        _shared.ssl_contexts = dict(contexts)
    return _shared


def ssl_context(tls: TlsOptions = DEFAULT_TLS) -> ssl.SSLContext:
    """The process's SSL context for `tls` (a CA file is loaded once per process).

    Raises `OSError` or `ssl.SSLError` when `tls.ca` cannot be loaded.
    """
    if isinstance(tls.verify, ssl.SSLContext):
        return tls.verify
    shared = _current()
    with shared.lock:
        context = shared.ssl_contexts.get(tls.key)
        if context is None:
            if tls.ca is not None:
                context = ssl.create_default_context(cafile=tls.ca)
            else:
                context = httpx.create_ssl_context(verify=tls.verify)
            shared.ssl_contexts[tls.key] = context
        return context


def acquire_http(tls: TlsOptions = DEFAULT_TLS) -> httpx.AsyncClient:
    """The running loop's shared client for `tls`; pair each call with `release_http`."""
    loop = asyncio.get_running_loop()
    context = ssl_context(tls)
    shared = _current()
    with shared.lock:
        leases = shared.clients.setdefault(loop, {})
        lease = leases.get(tls.key)
        if lease is None or lease.client.is_closed:
            client = httpx.AsyncClient(
                verify=context,
                timeout=DEFAULT_TIMEOUT,
                limits=httpx.Limits(
                    max_connections=None,
                    max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
                    keepalive_expiry=KEEPALIVE_EXPIRY,
                ),
            )
            lease = leases[tls.key] = _Lease(client)
        lease.users += 1
        return lease.client


async def release_http(client: httpx.AsyncClient) -> None:
    """Give back a client from `acquire_http`; the last user on a loop closes it."""
    loop = asyncio.get_running_loop()
    shared = _current()
    with shared.lock:
        leases = shared.clients.get(loop, {})
        key = next((key for key, lease in leases.items() if lease.client is client), None)
        if key is None:
            return
        lease = leases[key]
        lease.users -= 1
        if lease.users > 0:
            return
        del leases[key]
    await client.aclose()
