"""The uvicorn server configsvc runs: it ends watch streams as soon as shutdown begins."""

from __future__ import annotations

from typing import Any

import uvicorn

from configsvc.app import ConfigsvcApp
from configsvc.settings import DEFAULT_REQUEST_READ_TIMEOUT_SECONDS

GRACEFUL_SHUTDOWN_SECONDS = 5.0


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
