"""The limits of docs/operations.md#limits: the table matches the code, and each limit holds
with the documented outcome."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from badinput.badtools import (
    MARKER,
    assert_error_shape,
    open_stream,
    rate_spec,
)
from badinput.conftest import Refusals
from configsvc_schemas.wire import (
    MAX_FLEET_INSTANCES,
    MAX_INSTANCE_ID_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_REPORT_BYTES,
    MAX_REPORT_DOCUMENTS,
    MAX_REPORT_ERROR_LENGTH,
    MAX_REPORT_INTERVAL,
    MAX_REPORT_NAMESPACES,
    MIN_REPORT_INTERVAL,
)
from support import RunningService, SseReader

from configsvc.api.configs import MAX_MESSAGE_LENGTH
from configsvc.api.http import MAX_HEADER_BYTES, MAX_JSON_DEPTH
from configsvc.api.watch import MAX_WATCH_NAMESPACES
from configsvc.app import ConfigsvcApp
from configsvc.fanout import FanoutOptions
from configsvc.http_protocol import MAX_HEAD_BYTES
from configsvc.settings import (
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_REQUEST_READ_TIMEOUT_SECONDS,
    DEFAULT_STORE_TIMEOUT_SECONDS,
    MAX_BODY_BYTES,
)
from configsvc.store import etcd_client
from configsvc.store.etcd_store import MAX_WRITE_ATTEMPTS, MAX_WRITE_BYTES

OPERATIONS_MD = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
MiB = 1024 * 1024


def limits_table() -> dict[str, tuple[str, str]]:
    """The rows of the Limits table: {limit: (value, at the limit)}."""
    text = OPERATIONS_MD.read_text()
    section = text[text.index("## Limits\n") :]
    section = section[: section.find("\n## ", 5)] if "\n## " in section[5:] else section
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("limit", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_the_limits_table_matches_the_code() -> None:
    options = FanoutOptions()
    grpc_receive = etcd_client.GRPC_OPTIONS["grpc.max_receive_message_length"]
    expected = {
        "request body": [f"{MAX_BODY_BYTES // 1024} KiB", "413"],
        "JSON in a body": [f"{MAX_JSON_DEPTH} levels", "4,300 digits", "400"],
        "request headers": [
            f"{MAX_HEADER_BYTES // 1024} KiB",
            f"{MAX_HEAD_BYTES // 1024} KiB",
            "431",
        ],
        "reading a request": [f"({DEFAULT_REQUEST_READ_TIMEOUT_SECONDS:g} s)", "408"],
        "body media type": ["application/json", "Content-Encoding", "400"],
        "query parameters": ["each at most once", "400"],
        "name of a namespace": ["1-63 characters", "400"],
        "`message`": [f"{MAX_MESSAGE_LENGTH:,} characters", "422"],
        "one write to etcd": [f"{MAX_WRITE_BYTES / 1e6:g} MB", "413"],
        "history per document": [f"({DEFAULT_HISTORY_LIMIT:,})", "snapshot"],
        "`?limit=`": ["1-100,000", "400"],
        "documents per namespace": [f"{grpc_receive // MiB} MiB", "503"],
        "namespaces per watch": [f"{MAX_WATCH_NAMESPACES}", "400"],
        "open watch streams": [f"{options.max_subscribers:,}", "503"],
        "unsent bytes": [f"{options.max_buffer_bytes // MiB} MiB", "dropped"],
        "live events held": [f"{options.max_pending_events:,}", "dropped"],
        "recent events": [
            f"{options.ring_events:,} events",
            f"{options.ring_bytes // MiB} MiB",
            "history records",
        ],
        "store call deadline": [f"{DEFAULT_STORE_TIMEOUT_SECONDS:g} s", "503"],
        "concurrent writers": [f"{MAX_WRITE_ATTEMPTS} times", "503"],
        "fleet report body": [f"{MAX_REPORT_BYTES // 1024} KiB", "413"],
        "fleet report contents": [
            f"{MAX_REPORT_DOCUMENTS:,} documents",
            f"{MAX_REPORT_NAMESPACES} namespaces",
            f"{MAX_LABELS} labels",
            f"{MAX_LABEL_VALUE_LENGTH} characters",
            f"{MAX_REPORT_ERROR_LENGTH:,} characters",
            f"1-{MAX_INSTANCE_ID_LENGTH} characters",
            f"{MIN_REPORT_INTERVAL:g}-{MAX_REPORT_INTERVAL:,.0f} s",
            "422",
        ],
        "fleet reports of a token": ["403", "409"],
        "SDK instances in the fleet": [f"{MAX_FLEET_INSTANCES:,}", "503"],
    }
    rows = limits_table()
    for key, fragments in expected.items():
        found = [row for name, row in rows.items() if name.startswith(key)]
        assert len(found) == 1, (key, list(rows))
        text = " ".join(found[0])
        for fragment in fragments:
            assert fragment in text, (key, fragment, text)
    assert len(rows) == len(expected), sorted(rows)


# ---- names, messages, history listing ---------------------------------------------------


def test_longest_names_and_messages_are_accepted_one_more_is_refused(refusals: Refusals) -> None:
    longest = "a" + "b" * 61 + "c"
    api = refusals.api
    body = {"kind": "RateLimits", "spec": rate_spec(), "message": "é" * MAX_MESSAGE_LENGTH}
    assert api.put(f"/v1/configs/{longest}/{longest}", json=body).status_code == 201
    token = {"name": longest, "role": "reader", "namespaces": [longest]}
    assert api.post("/v1/tokens", json=token).status_code == 201
    refusals.rebase()
    body["message"] += "é"
    refusals.refused(api.put("/v1/configs/prod/new-doc", json=body), 422)
    too_long = longest + "d"
    body["message"] = None
    refusals.refused(api.put(f"/v1/configs/{too_long}/x", json=body), 400)
    refusals.refused(api.put(f"/v1/configs/x/{too_long}", json=body), 400)
    refusals.refused(api.post("/v1/tokens", json={**token, "name": too_long}), 400)
    rollback = {"to_version": 1, "message": "x" * (MAX_MESSAGE_LENGTH + 1)}
    refusals.refused(api.post("/v1/configs/prod/limits/rollback", json=rollback), 422)
    refusals.unchanged()


def test_history_listing_limit_bounds(refusals: Refusals) -> None:
    path = "/v1/configs/prod/limits/history"
    assert refusals.api.get(path, params={"limit": 100_000}).status_code == 200
    for limit in (0, 100_001):
        refusals.refused(refusals.api.get(path, params={"limit": limit}), 400)


# ---- one write to etcd ------------------------------------------------------------------


def test_a_write_over_the_etcd_limit_is_413_even_from_a_small_body(refusals: Refusals) -> None:
    """`****` secrets are restored from the stored document: a 460 KB body that keeps two
    stored 450 KB keys becomes a 1.35 MB write. It is refused whole, and the answer holds
    no secret."""
    api = refusals.api
    endpoints: dict[str, Any] = {}
    for name in ("a", "b"):
        for kept in endpoints.values():
            kept["api_key"] = "****"
        endpoints[name] = {"base_url": "http://x", "model": "m", "api_key": MARKER + "k" * 450_000}
        spec = {"default": "a", "endpoints": endpoints}
        stored = api.put("/v1/configs/prod/big", json={"kind": "ModelEndpoints", "spec": spec})
        assert stored.status_code in (200, 201), stored.text[:300]
    refusals.rebase()
    for kept in endpoints.values():
        kept["api_key"] = "****"
    endpoints["c"] = {"base_url": "http://x", "model": "m", "api_key": "k" * 450_000}
    spec = {"default": "a", "endpoints": endpoints}
    response = api.put("/v1/configs/prod/big", json={"kind": "ModelEndpoints", "spec": spec})
    assert refusals.refused(response, 413) == "payload_too_large"
    assert MARKER not in response.text
    refusals.unchanged()


# ---- history ----------------------------------------------------------------------------


def put_rate(client: httpx.Client, path: str, rps: float) -> int:
    response = client.put(path, json={"kind": "RateLimits", "spec": rate_spec(rps)})
    assert response.status_code in (200, 201), response.text
    revision: int = response.json()["revision"]
    return revision


def events(url: str, token: str, since: int, count: int) -> list[tuple[str, Any]]:
    reader = SseReader(url, token, ["prod"], since=since)
    try:
        assert reader.status_code == 200
        found = []
        for _ in range(count):
            event = reader.next()
            assert event is not None
            found.append((event.event, event.data))
            if event.event == "snapshot":
                break
        return found
    finally:
        reader.close()


def test_history_limit_trims_and_old_resume_points_get_a_snapshot(
    service_factory: Callable[..., RunningService],
) -> None:
    first = service_factory(history_limit=3)
    token = first.admin_token
    path = "/v1/configs/prod/doc"
    with first.client() as api:
        revisions = [put_rate(api, path, rps) for rps in (1, 2, 3, 4, 5)]
        versions = [row["version"] for row in api.get(f"{path}/history").json()["items"]]
        assert versions == [5, 4, 3]
        for trimmed in (1, 2):
            assert_error_shape(api.get(f"{path}/versions/{trimmed}"), 404)
            assert_error_shape(api.post(f"{path}/rollback", json={"to_version": trimmed}), 404)
        assert api.get(f"{path}/versions/3").status_code == 200
    # This instance still holds every event in memory: it sends them, not a snapshot.
    remembered = events(first.url, token, revisions[0], 4)
    assert [data["version"] for _, data in remembered] == [2, 3, 4, 5]
    # A new instance replays from the history records, which lost versions 1 and 2.
    second = service_factory(history_limit=3)
    kind, data = events(second.url, token, revisions[0], 1)[0]
    assert kind == "snapshot" and data["items"][0]["version"] == 5
    replayed = events(second.url, token, revisions[2], 2)
    assert [(kind, data["version"]) for kind, data in replayed] == [("put", 4), ("put", 5)]


def test_resume_points_older_than_the_memory_are_replayed_from_history(
    service: RunningService,
) -> None:
    app = running_app(service)
    fanout = app.fanout
    assert fanout is not None
    fanout.options = dataclasses.replace(fanout.options, ring_events=2)
    with service.client() as api:
        revisions = [put_rate(api, "/v1/configs/prod/doc", rps) for rps in range(1, 7)]
    # only the last two events are in memory, once the store watch has brought them all
    wait_for(lambda: fanout.floor >= revisions[3])
    replayed = events(service.url, service.admin_token, revisions[0], 5)
    assert [(kind, data["version"]) for kind, data in replayed] == [
        ("put", version) for version in range(2, 7)
    ]


# ---- watch streams ----------------------------------------------------------------------


def running_app(service: RunningService) -> ConfigsvcApp:
    app = service.server.config.app
    assert isinstance(app, ConfigsvcApp)
    return app


def test_streams_past_the_instance_limit_are_503(service: RunningService) -> None:
    fanout = running_app(service).fanout
    assert fanout is not None
    fanout.options = dataclasses.replace(fanout.options, max_subscribers=2)
    token = service.admin_token
    streams = [open_stream(service.url, token, "namespace=prod") for _ in range(2)]
    try:
        wait_for(lambda: fanout.subscriber_count == 2)
        with service.client() as api:
            refused = api.get("/v1/watch", params={"namespace": "prod"})
        assert assert_error_shape(refused, 503) == "store_unavailable"
        streams.pop().close()
        wait_for(lambda: fanout.subscriber_count == 1)
        streams.append(open_stream(service.url, token, "namespace=prod"))
        wait_for(lambda: fanout.subscriber_count == 2)
    finally:
        for sock in streams:
            sock.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def big_rate_spec(size: int, rps: int, entries: int = 1) -> dict[str, Any]:
    """A RateLimits spec of about `size` bytes (in long limit names: cheap to validate)."""
    pad = "x" * (size // entries)
    return {"limits": {f"l{i}-{pad}": {"requests_per_second": rps} for i in range(entries)}}


def test_a_reader_that_falls_4_mib_behind_is_dropped_and_resumes_without_gaps(
    service: RunningService,
) -> None:
    """A client that stops reading: its stream is aborted once 4 MiB wait unsent; resuming
    from a revision it had, it gets every later change once, in order."""
    fanout = running_app(service).fanout
    assert fanout is not None
    token = service.admin_token
    path = "/v1/configs/prod/big"
    with service.client() as api:
        start = put_rate(api, path, 1)
        sock = open_stream(service.url, token, f"namespace=prod&since={start}", rcvbuf=4096)
        wait_for(lambda: fanout.subscriber_count == 1)
        written: list[int] = []
        sent_bytes = 0
        for rps in range(2, 60):  # ~0.5 MB per event: at most ~28 MB
            body = {"kind": "RateLimits", "spec": big_rate_spec(480_000, rps)}
            response = api.put(path, json=body)
            assert response.status_code == 200, response.text[:200]
            written.append(response.json()["version"])
            sent_bytes += len(response.content)
            if fanout.subscriber_count == 0:
                break
        assert fanout.subscriber_count == 0, "the slow stream was not dropped"
        assert sent_bytes > 4 * MiB
        sock.close()
    reader = SseReader(service.url, token, ["prod"], since=start)
    try:
        versions = [reader.next(timeout=20).data["version"] for _ in written]
    finally:
        reader.close()
    assert versions == written


def test_a_namespace_larger_than_the_grpc_receive_limit_lists_and_streams(
    monkeypatch: pytest.MonkeyPatch,
    service_factory: Callable[..., RunningService],
) -> None:
    """One etcd answer is at most 256 MiB (shrunk to 256 KiB here). A listing reads the
    documents' metadata in one answer and each spec in one of its own, so a namespace
    larger than one answer still lists, and streams."""
    monkeypatch.setitem(etcd_client.GRPC_OPTIONS, "grpc.max_receive_message_length", 256 * 1024)
    service = service_factory()
    with service.client() as api:
        for name in ("a", "b", "c"):
            body = {"kind": "RateLimits", "spec": big_rate_spec(100_000, 1)}
            assert api.put(f"/v1/configs/big/{name}", json=body).status_code == 201
        listing = api.get("/v1/configs/big")
        assert listing.status_code == 200
        assert [doc["name"] for doc in listing.json()["items"]] == ["a", "b", "c"]
    reader = SseReader(service.url, service.admin_token, ["big"])
    try:
        snapshot = reader.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        assert len(snapshot.data["items"]) == 3
    finally:
        reader.close()
