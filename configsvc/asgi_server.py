"""The uvicorn server configsvc runs: it ends watch streams as soon as shutdown begins."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import uvicorn

from configsvc.app import ConfigsvcApp
from configsvc.errors import ConfigsvcError
from configsvc.settings import DEFAULT_REQUEST_READ_TIMEOUT_SECONDS

GRACEFUL_SHUTDOWN_SECONDS = 5.0
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"
"""TLS 1.2 suites: forward secrecy and authenticated encryption only (uvicorn's default,
"TLSv1", also allows CBC and RSA key exchange). TLS 1.3 suites are always on; Python's
server contexts refuse TLS below 1.2."""


class StreamClosingServer(uvicorn.Server):
    """uvicorn waits for open responses before shutting down; watch streams never end by
    themselves, so they are closed first and clients resume on another instance."""

    def __init__(self, config: uvicorn.Config, app: ConfigsvcApp) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: Any = None) -> None:
        self._app.close_streams()
        await super().shutdown(sockets)


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
