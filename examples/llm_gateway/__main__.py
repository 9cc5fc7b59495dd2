"""Run the example gateway: `python examples/llm_gateway [--port 8000] [--namespace prod]`.

The configsvc service and token come from `--url`/`--token`, else `CONFIGSVC_URL` and
`CONFIGSVC_TOKEN` (a token that may read secrets, so that upstream `api_key`s arrive).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

if __package__ in (None, ""):
    # Run as `python examples/llm_gateway`: make the `llm_gateway` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from configsvc_client import ConfigClient

from llm_gateway.app import GatewaySettings, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An LLM gateway configured live by configsvc.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--url", help="configsvc URL (default: $CONFIGSVC_URL)")
    parser.add_argument("--token", help="configsvc token (default: $CONFIGSVC_TOKEN)")
    parser.add_argument("--namespace", default="prod")
    parser.add_argument("--cache-dir", help="keep serving the last config if configsvc is down")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(name)s: %(message)s")
    client = ConfigClient(
        args.url, args.token, namespaces=[args.namespace], cache_dir=args.cache_dir
    )
    app = create_app(client, GatewaySettings(namespace=args.namespace))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
