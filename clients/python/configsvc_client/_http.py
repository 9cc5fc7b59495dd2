"""One HTTP client per event loop, one SSL context per process.

Creating an `httpx.AsyncClient` loads the CA bundle (~70 ms); hundreds of config clients
in one process share one instead. The shared client has no connection limit (each open
stream holds a connection) and is closed when the last client on its loop releases it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import weakref

import httpx

MAX_KEEPALIVE_CONNECTIONS = 32
KEEPALIVE_EXPIRY = 5.0
DEFAULT_TIMEOUT = 10.0
"""Only for requests that give none; every request of the sources gives its own."""


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ssl_context: ssl.SSLContext | None = None
        self.pid = os.getpid()
        self.clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lease] = (
            weakref.WeakKeyDictionary()
        )


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
        context = _shared.ssl_context  # no connection state: fine to reuse after fork
        _shared = _Shared()
        _shared.ssl_context = context
    return _shared


def ssl_context() -> ssl.SSLContext:
    """The process's SSL context (CA bundle loaded once)."""
    shared = _current()
    with shared.lock:
        if shared.ssl_context is None:
            shared.ssl_context = httpx.create_ssl_context()
        return shared.ssl_context


def acquire_http() -> httpx.AsyncClient:
    """The running loop's shared client; pair each call with `release_http`."""
    loop = asyncio.get_running_loop()
    context = ssl_context()
    shared = _current()
    with shared.lock:
        lease = shared.clients.get(loop)
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
            lease = shared.clients[loop] = _Lease(client)
        lease.users += 1
        return lease.client


async def release_http(client: httpx.AsyncClient) -> None:
    """Give back a client from `acquire_http`; the last user on a loop closes it."""
    loop = asyncio.get_running_loop()
    shared = _current()
    with shared.lock:
        lease = shared.clients.get(loop)
        if lease is None or lease.client is not client:
            return
        lease.users -= 1
        if lease.users > 0:
            return
        del shared.clients[loop]
    await client.aclose()
