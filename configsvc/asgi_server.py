"""The uvicorn server configsvc runs: it ends watch streams as soon as shutdown begins."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

import uvicorn

from configsvc.api.sse_connection import TLS_CLOSE_GRACE_SECONDS
from configsvc.app import ConfigsvcApp
from configsvc.errors import ConfigsvcError
from configsvc.settings import DEFAULT_REQUEST_READ_TIMEOUT_SECONDS

GRACEFUL_SHUTDOWN_SECONDS = 5.0
CLOSING_POLL_SECONDS = 0.1
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"
"""TLS 1.2 suites: forward secrecy and authenticated encryption only (uvicorn's default,
"TLSv1", also allows CBC and RSA key exchange). TLS 1.3 suites are always on; Python's
server contexts refuse TLS below 1.2."""


class StreamClosingServer(uvicorn.Server):
    """uvicorn waits for open responses before shutting down; watch streams never end by
    themselves, so they are closed first and clients resume on another instance.

    Over TLS, closing a connection waits for the client's close_notify, which a client that
    is not reading (an idle pooled connection) never sends: uvicorn would wait out its whole
    graceful timeout. Connections still closing after `TLS_CLOSE_GRACE_SECONDS` are dropped
    (their responses are complete), and shutdown waits that long for the watch streams' own
    TLS closes (see `SseConnection.end`), so that none is left open when the loop stops.
    """

    def __init__(self, config: uvicorn.Config, app: ConfigsvcApp) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: Any = None) -> None:
        fanout = self._app.fanout
        streams = fanout.subscriber_count if fanout is not None else 0
        self._app.close_streams()
        if not self.config.is_ssl:
            await super().shutdown(sockets)
            return
        started = asyncio.get_running_loop().time()
        reaper = asyncio.create_task(self._drop_lingering_tls())
        try:
            await super().shutdown(sockets)
            if streams:
                elapsed = asyncio.get_running_loop().time() - started
                await asyncio.sleep(max(0.0, TLS_CLOSE_GRACE_SECONDS - elapsed))
                await asyncio.sleep(CLOSING_POLL_SECONDS)  # the drops' connection_lost
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper

    async def _drop_lingering_tls(self) -> None:
        """Abort connections that have been closing for `TLS_CLOSE_GRACE_SECONDS`: their
        responses are complete, only the client's close_notify is missing."""
        loop = asyncio.get_running_loop()
        closing_since: dict[Any, float] = {}
        while True:
            now = loop.time()
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is None or not transport.is_closing():
                    continue
                since = closing_since.setdefault(connection, now)
                if now - since >= TLS_CLOSE_GRACE_SECONDS:
                    transport.abort()
            await asyncio.sleep(CLOSING_POLL_SECONDS)


def make_server(
    app: ConfigsvcApp,
    host: str,
    port: int,
    *,
    request_read_timeout: float = DEFAULT_REQUEST_READ_TIMEOUT_SECONDS,
    **config: Any,
) -> StreamClosingServer:
    """A server for `app` on `host:port`; `config` goes to `uvicorn.Config`.

    HTTP/1.1 is served by uvicorn's httptools protocol with bounds on reading a request
    (`BoundedHttpToolsProtocol`: head size, `request_read_timeout`), unless `config` names
    another protocol.
    """
    config.setdefault("timeout_graceful_shutdown", GRACEFUL_SHUTDOWN_SECONDS)
    try:
        from configsvc.http_protocol import BoundedHttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's h11 protocol, which bounds heads itself
        pass
    else:
        config.setdefault("http", BoundedHttpToolsProtocol.with_read_timeout(request_read_timeout))
    return StreamClosingServer(uvicorn.Config(app, host=host, port=port, **config), app)


def tls_options(cert: Path, key: Path) -> dict[str, Any]:
    """uvicorn's options to serve HTTPS with the PEM files `cert` (the chain) and `key`.

    The files are loaded here once, so that a bad file is a one-line `ConfigsvcError` at
    start rather than a traceback from uvicorn.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:
        raise ConfigsvcError(
            f"cannot load --tls-cert {cert} with --tls-key {key}: {exc.strerror or exc}"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigsvcError(
            f"cannot load --tls-cert {cert} with --tls-key {key}: {exc.reason or exc}"
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_ciphers": TLS_CIPHERS}
