"""The SDK's fleet reporter over a scripted transport: what it sends, when, and what not."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from configsvc_client import (
    ClientOptions,
    ConfigClient,
    Document,
    Mode,
    ReportOptions,
    Snapshot,
    SourceState,
    Update,
)
from configsvc_client._fleet import FleetReporter
from configsvc_client._identity import Identity, IdentityRule
from configsvc_client._state import ConfigState
from configsvc_client._status import ClientStatus
from configsvc_client.kinds import ModelEndpoints
from configsvc_schemas.wire import (
    INSTANCE_HEADER,
    LABELS_HEADER,
    VOUCHED_REPORTS_EVERY,
    is_valid_instance_id,
)
from pydantic import model_validator

URL = "http://configsvc.test"
SECRET = "sk-do-not-report-0123456789"


class Recorder:
    """A scripted service: answers the watch, polls and reports; keeps every request."""

    def __init__(self, report_status: int = 204) -> None:
        self.requests: list[httpx.Request] = []
        self.report_status = report_status

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/watch":
            event = {"revision": 5, "items": [_models_doc(5).to_wire()]}
            body = f"id: 5\nevent: snapshot\ndata: {json.dumps(event)}\n\n".encode()
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        if path.startswith("/v1/fleet/reports"):
            return httpx.Response(self.report_status if request.method == "POST" else 204)
        return httpx.Response(200, json={"revision": 5, "items": [_models_doc(5).to_wire()]})

    def reports(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == "POST" and r.url.path == "/v1/fleet/reports"
        ]

    def of(self, method: str, prefix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.startswith(prefix)]


def _models_doc(revision: int, read: float = 600) -> Document:
    spec = {
        "default": "local",
        "endpoints": {
            "local": {
                "base_url": "http://h/v1",
                "model": "m",
                "api_key": SECRET,
                "timeout": {"read": read},
            }
        },
    }
    return Document("prod", "models", "ModelEndpoints", spec, revision - 3, revision)


class ShortReads(ModelEndpoints):
    """A model whose own check would, carelessly, quote the secret."""

    @model_validator(mode="after")
    def _short(self) -> ShortReads:
        endpoint = self.endpoints["local"]
        if endpoint.timeout.read > 60:
            raise ValueError(f"read timeout too long for key {endpoint.api_key}")
        return self


def reporter(
    recorder: Recorder,
    state: ConfigState,
    options: ReportOptions,
    http: httpx.AsyncClient,
    vouched: Callable[[], bool] = lambda: False,
) -> FleetReporter:
    def status() -> ClientStatus:
        return ClientStatus(Mode.STREAMING, state.revision, 0.0, None)

    identity = Identity("host-1-abcd0123", "gw", {"region": "eu"})
    return FleetReporter(
        http, [URL], "tok", identity, ["prod"], options, state, status, vouched=vouched
    )


def fed_state() -> ConfigState:
    state = ConfigState(["prod"])
    state.bind("prod/models", ShortReads)
    state.apply(Update(SourceState.VALID, snapshot=Snapshot(5, (_models_doc(5, read=30),))))
    state.apply(Update(SourceState.VALID, snapshot=Snapshot(9, (_models_doc(9, read=600),))))
    return state


async def test_a_report_says_what_was_applied_and_rejected_and_never_a_secret() -> None:
    recorder = Recorder()
    state = fed_state()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handler)) as http:
        fleet = reporter(recorder, state, ReportOptions(coalesce=0.01), http)
        body = json.loads(fleet.body() or b"")
    assert body["instance"] == "host-1-abcd0123" and body["app"] == "gw"
    assert body["labels"] == {"region": "eu"} and body["mode"] == "streaming"
    assert body["namespaces"] == ["prod"] and body["report_interval"] == 30
    assert body["pid"] == os.getpid() and body["sdk"].startswith("configsvc_client")
    assert body["documents"]["prod/models"]["version"] == 2
    assert body["documents"]["prod/models"]["applied_at"].endswith("Z")
    rejected = body["rejected"]["prod/models"]
    assert rejected["version"] == 6 and rejected["revision"] == 9
    assert "read timeout too long" in rejected["error"] and "****" in rejected["error"]
    assert SECRET not in json.dumps(body)


async def test_changes_are_gathered_into_one_report_and_goodbye_follows_a_report() -> None:
    recorder = Recorder()
    state = fed_state()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handler)) as http:
        fleet = reporter(recorder, state, ReportOptions(coalesce=0.1, interval=60), http)
        fleet.start()
        for _ in range(5):
            fleet.changed()
            await asyncio.sleep(0.01)
        await _until(lambda: len(recorder.reports()) == 1)
        await asyncio.sleep(0.3)
        assert len(recorder.reports()) == 1 and fleet.error is None and fleet.sent == 1
        await fleet.aclose()
    (goodbye,) = recorder.of("DELETE", "/v1/fleet/reports/")
    assert goodbye.url.path == "/v1/fleet/reports/host-1-abcd0123"
    assert goodbye.headers["authorization"] == "Bearer tok"


async def test_no_goodbye_without_a_report_that_got_through() -> None:
    recorder = Recorder(report_status=403)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handler)) as http:
        fleet = reporter(recorder, fed_state(), ReportOptions(coalesce=0.01, interval=60), http)
        fleet.start()
        fleet.changed()
        await _until(lambda: fleet.error is not None)
        assert fleet.error == "forbidden"
        await asyncio.sleep(0.3)  # a refusal is not retried before the interval
        assert len(recorder.reports()) == 1
        await fleet.aclose()
    assert recorder.of("DELETE", "/v1/fleet/reports/") == []


async def test_a_failing_service_is_retried_soon_then_it_reports_every_interval() -> None:
    recorder = Recorder(report_status=503)
    options = ReportOptions(coalesce=0.01, interval=0.5, retry=0.05)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handler)) as http:
        fleet = reporter(recorder, fed_state(), options, http)
        fleet.start()
        fleet.changed()
        await _until(lambda: len(recorder.reports()) >= 3, within=1.0)  # well before 0.5 s x 3
        assert fleet.error is not None and "503" in fleet.error
        recorder.report_status = 204
        await _until(lambda: fleet.error is None)
        reported = len(recorder.reports())
        await _until(lambda: len(recorder.reports()) >= reported + 2, within=3.0)
        await fleet.aclose()


async def test_while_the_stream_stands_for_it_only_changes_and_every_tenth_report_go() -> None:
    recorder = Recorder()
    state = fed_state()
    stream_open = True
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handler)) as http:
        fleet = reporter(recorder, state, ReportOptions(), http, vouched=lambda: stream_open)
        for _ in range(1 + 2 * VOUCHED_REPORTS_EVERY):  # the loop's periodic reports
            await fleet._report()
        # the first report, then one unchanged report in ten
        assert len(recorder.reports()) == 3 and fleet.sent == 3
        assert fleet.left_out == 2 * (VOUCHED_REPORTS_EVERY - 1)
        # a change goes at once, stream or not
        state.apply(Update(SourceState.VALID, snapshot=Snapshot(12, (_models_doc(12, 30),))))
        await fleet._report()
        assert len(recorder.reports()) == 4
        assert recorder.reports()[-1]["documents"]["prod/models"]["revision"] == 12
        await fleet._report()
        assert len(recorder.reports()) == 4
        # the stream closed: every report goes again
        stream_open = False
        for _ in range(3):
            await fleet._report()
        assert len(recorder.reports()) == 7


async def test_a_client_names_itself_on_the_watch_and_reports_unless_told_not_to() -> None:
    recorder = Recorder()
    options = ClientOptions(backoff_initial=0.05, backoff_max=0.1)
    client = ConfigClient(
        URL,
        "tok",
        namespaces=["prod"],
        app="gw",
        labels={"region": "eu"},
        instance_id="my-instance",
        options=options.replace(reports=ReportOptions(coalesce=0.01)),
        transport=httpx.MockTransport(recorder.handler),
    )
    assert client.instance_id == "my-instance"
    async with client:
        await _until(lambda: bool(recorder.reports()))
        assert client.status.report_error is None
    watch = recorder.of("GET", "/v1/watch")[0]
    assert watch.headers[INSTANCE_HEADER] == "my-instance"
    assert json.loads(watch.headers[LABELS_HEADER]) == {"region": "eu"}
    assert recorder.reports()[0]["instance"] == "my-instance"
    assert len(recorder.of("DELETE", "/v1/fleet/reports/my-instance")) == 1

    quiet = Recorder()
    silent = ConfigClient(
        URL,
        "tok",
        namespaces=["prod"],
        options=options.replace(reports=ReportOptions(enabled=False)),
        transport=httpx.MockTransport(quiet.handler),
    )
    assert silent.instance_id is None
    async with silent:
        await asyncio.sleep(0.2)
    assert quiet.reports() == [] and quiet.of("DELETE", "/") == []
    assert all(INSTANCE_HEADER not in r.headers for r in quiet.requests)


def test_identity_rules() -> None:
    rule = IdentityRule(None, None, None)
    instance = rule.current().instance
    _host, pid, suffix = instance.rsplit("-", 2)
    assert pid == str(os.getpid()) and len(suffix) == 8 and is_valid_instance_id(instance)
    assert rule.current().instance == instance  # stable in one process
    assert IdentityRule(None, None, None).current().instance != instance  # one per client
    for bad in ({"app": "bad app"}, {"labels": {"k": "v\n"}}, {"instance_id": "-x"}):
        args: dict[str, Any] = {"app": None, "labels": None, "instance_id": None, **bad}
        with pytest.raises(ValueError):
            IdentityRule(**args)
    with pytest.raises(ValueError):
        ReportOptions(interval=0.1)
    with pytest.raises(ValueError):
        ClientOptions(reports="often")  # type: ignore[arg-type]


FORK = """
import json, os
from configsvc_client._identity import IdentityRule
default, explicit = IdentityRule(None, None, None), IdentityRule("gw", None, "gw-1")
before = [default.current().instance, explicit.current().instance]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, json.dumps([default.current().instance, explicit.current().instance]).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"before": before, "child": json.loads(os.read(r, 4096)), "pid": pid,
                  "after": [default.current().instance, explicit.current().instance]}))
"""


def test_a_forked_child_gets_its_own_instance_id() -> None:
    done = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["after"] == found["before"]
    child_default, child_explicit = found["child"]
    assert child_default != found["before"][0]
    assert child_default.split("-")[-2] == str(found["pid"])
    assert child_explicit == f"gw-1-{found['pid']}"


async def _until(predicate: Callable[[], object], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)
