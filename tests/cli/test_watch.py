"""`watch NS [NS…]`: one flushed line per event, resuming after drops without gaps or repeats."""

from __future__ import annotations

import json
import signal

import httpx
from cli.clitools import Cli, LineReader, models_spec, put

EXIT_TIMEOUT = 10.0


def test_watch_prints_one_line_per_event(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    proc = cli.start("watch", "prod", "staging")
    assert proc.stdout is not None and proc.stderr is not None
    out, err = LineReader(proc.stdout), LineReader(proc.stderr)
    out.wait_for("snapshot  prod,staging  1 documents")
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=900))
    put(api, "staging/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 1}}})
    put(api, "other/ignored", "RateLimits", {"limits": {"chat": {"requests_per_second": 1}}})
    api.delete("/v1/configs/prod/chat-models")
    out.wait_for("delete    prod/chat-models")
    time_, revision, action, subject, *version = out.lines[1].split()
    assert time_.endswith("Z") and revision.isdigit()
    assert (action, subject, version) == ("put", "prod/chat-models", ["version", "2"])
    assert out.lines[2].split()[2:] == ["put", "staging/limits", "version", "1"]
    assert len(out.lines) == 4 and not any("other/" in line for line in out.lines)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_watch_resumes_after_drops_without_gaps_or_repeats(cli: Cli, api: httpx.Client) -> None:
    # the service's keep-alive is far longer than --idle-timeout: the stream drops often
    proc = cli.start("watch", "prod", "-o", "json", "--idle-timeout", "0.3", "--max-delay", "0.1")
    assert proc.stdout is not None and proc.stderr is not None
    out, err = LineReader(proc.stdout), LineReader(proc.stderr)
    out.wait_for('"action": "snapshot"')
    for read in range(1, 7):
        err.wait_for("reconnected", start=max(0, len(err.lines) - 1))
        put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=read))
    out.wait_for('"version": 6')
    events = [json.loads(line) for line in out.lines[1:]]
    assert [event["version"] for event in events] == [1, 2, 3, 4, 5, 6]
    revisions = [event["revision"] for event in events]
    assert revisions == sorted(set(revisions))
    assert any("stream dropped" in line for line in err.lines)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0


def test_watch_failures(cli: Cli) -> None:
    cli("watch", "prod", "--token", "bad").failed_with("unauthorized")
    cli("watch", "prod", "--url", "http://127.0.0.1:1").failed_with("cannot reach")
    assert cli("watch").code == 2
