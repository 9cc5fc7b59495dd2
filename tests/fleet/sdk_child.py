"""A ConfigClient in its own process, for the fleet tests.

argv[1] is JSON: urls, token, namespaces, interval (report_interval), app, labels, strict
(bind prod/limits with a model that refuses more than 100 requests per second). Prints
`ready <instance id>` once started, then answers each stdin line: `status` prints the
client's status as JSON, `stop` stops the client (it says goodbye), prints, and exits.
"""

from __future__ import annotations

import json
import sys
from typing import Self

from configsvc_client import ClientOptions, ConfigClient
from configsvc_client.kinds import RateLimits
from pydantic import model_validator


class StrictLimits(RateLimits):
    @model_validator(mode="after")
    def _at_most_100(self) -> Self:
        chat = self.limits.get("chat")
        if chat is not None and (chat.requests_per_second or 0) > 100:
            raise ValueError("chat must allow at most 100 requests per second")
        return self


def main() -> None:
    config = json.loads(sys.argv[1])
    options = ClientOptions(
        start_timeout=10, backoff_initial=0.05, backoff_max=0.5, server_keepalive=1.0
    )
    client = ConfigClient(
        config["urls"],
        config["token"],
        namespaces=config["namespaces"],
        app=config["app"],
        labels=config["labels"],
        report_interval=config["interval"],
        options=options,
    )
    if config["strict"]:
        client.bind("prod/limits", StrictLimits)
    client.start()
    print("ready", client.instance_id, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stop":
            client.stop()
        status = client.status
        print(json.dumps({"mode": status.mode, "error": status.error}), flush=True)
        if command == "stop":
            return


if __name__ == "__main__":
    main()
