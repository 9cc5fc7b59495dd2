"""The configsvc service under test, run as its own process so that /proc shows its CPU and RSS.

Run: python bench/_service.py PORT ETCD_URL ADMIN_TOKEN KEEPALIVE LOOP

LOOP is uvicorn's `loop` setting: auto (uvloop when installed), asyncio or uvloop.
"""

from __future__ import annotations

import sys

from configsvc.app import create_app
from configsvc.asgi_server import make_server
from configsvc.rlimits import raise_open_files_limit
from configsvc.settings import ServiceSettings

HOST = "127.0.0.1"
BACKLOG = 4096


def main() -> None:
    raise_open_files_limit()
    port, etcd_url, token, keepalive, loop = sys.argv[1:6]
    settings = ServiceSettings(
        host=HOST,
        port=int(port),
        etcd=etcd_url,
        admin_token=token,
        keepalive=float(keepalive),
    )
    app = create_app(settings, [etcd_url])
    server = make_server(
        app, HOST, int(port), log_level="warning", lifespan="on", backlog=BACKLOG, loop=loop
    )
    server.run()


if __name__ == "__main__":
    main()
