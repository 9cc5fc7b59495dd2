"""The floor of a fleet report: the service's own server answering 204 to a POST.

The server is the one the service runs (`make_server`: uvicorn, httptools with the read
bounds, the same loop); the app only reads the request body and answers 204: no token, no
JSON, no store. What a report costs the service beyond this is what the fleet code costs.

Run: python bench/_report_floor.py PORT  (prints "ready" on stdout once it listens)
"""

from __future__ import annotations

import sys
from typing import Any, cast

from configsvc.app import ConfigsvcApp
from configsvc.asgi_server import make_server
from configsvc.rlimits import raise_open_files_limit

HOST = "127.0.0.1"
BACKLOG = 4096


class FloorApp:
    """Reads the body, answers 204."""

    def close_streams(self) -> None:
        """None to close (the server calls this at shutdown)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    print("ready", flush=True)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    raise_open_files_limit()
    app = cast(ConfigsvcApp, FloorApp())
    server = make_server(
        app, HOST, int(sys.argv[1]), log_level="warning", lifespan="on", backlog=BACKLOG
    )
    server.run()


if __name__ == "__main__":
    main()
