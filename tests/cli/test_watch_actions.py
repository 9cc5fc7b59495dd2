"""`watch` shows what wrote each version: a rollback prints as a rollback, with the version
it restored (and `-o json` carries `action` and `rolled_back_to`)."""

from __future__ import annotations

import json
import signal

import httpx
from cli.clitools import Cli, LineReader, models_spec, put

EXIT_TIMEOUT = 10.0


def test_watch_prints_a_rollback_as_a_rollback(cli: Cli, api: httpx.Client) -> None:
    table = cli.start("watch", "prod")
    as_json = cli.start("watch", "prod", "-o", "json")
    readers = []
    for proc in (table, as_json):
        assert proc.stdout is not None
        readers.append(LineReader(proc.stdout))
    out, lines = readers
    out.wait_for("snapshot")
    lines.wait_for('"snapshot"')
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=600))
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=900))
    rolled = api.post("/v1/configs/prod/chat-models/rollback", json={"to_version": 1})
    assert rolled.status_code == 200, rolled.text
    api.delete("/v1/configs/prod/chat-models")
    out.wait_for("delete    prod/chat-models")
    assert [line.split()[2:] for line in out.lines[1:]] == [
        ["put", "prod/chat-models", "version", "1"],
        ["put", "prod/chat-models", "version", "2"],
        ["rollback", "prod/chat-models", "to", "version", "1:", "now", "version", "3"],
        ["delete", "prod/chat-models"],
    ]
    lines.wait_for('"delete"')
    events = [json.loads(line) for line in lines.lines[1:]]
    assert [(e["action"], e["version"], e.get("rolled_back_to")) for e in events] == [
        ("put", 1, None),
        ("put", 2, None),
        ("rollback", 3, 1),
        ("delete", None, None),
    ]
    for proc in (table, as_json):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=EXIT_TIMEOUT) == 0
