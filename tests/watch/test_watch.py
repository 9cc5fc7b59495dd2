"""GET /v1/watch against a real etcd and a real uvicorn server."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import RunningService, SseEvent, SseReader, start_service

from configsvc.embedded.process import EtcdProcess
from configsvc.store.replay import Replayer, Snapshot

KEEPALIVE = 0.2


def limits(rps: float) -> dict[str, Any]:
    return {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": rps}}}}


def models(key: str) -> dict[str, Any]:
    return {
        "kind": "ModelEndpoints",
        "spec": {
            "default": "a",
            "endpoints": {"a": {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": key}},
        },
    }


@pytest.fixture
def svc(service_factory: Callable[..., RunningService]) -> RunningService:
    return service_factory(keepalive=KEEPALIVE)


@pytest.fixture
def api(svc: RunningService) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


def put(api: httpx.Client, path: str, body: dict[str, Any]) -> int:
    response = api.put(f"/v1/configs/{path}", json=body)
    assert response.status_code in (200, 201), response.text
    revision: int = response.json()["revision"]
    return revision


def watch(svc: RunningService, *namespaces: str, **kwargs: Any) -> SseReader:
    reader = SseReader(svc.url, svc.admin_token, list(namespaces), **kwargs)
    assert reader.status_code == 200
    return reader


def events(reader: SseReader, count: int) -> list[SseEvent]:
    found = []
    for _ in range(count):
        event = reader.next()
        assert event is not None, f"stream ended after {found}"
        found.append(event)
    return found


def test_snapshot_then_ordered_puts_and_deletes(svc: RunningService, api: httpx.Client) -> None:
    first = put(api, "prod/a", limits(1))
    put(api, "other/x", limits(9))
    reader = watch(svc, "prod")
    assert reader.headers["content-type"].startswith("text/event-stream")
    assert reader.headers["cache-control"] == "no-cache"
    assert reader.headers["x-accel-buffering"] == "no"
    snapshot = reader.next()
    assert snapshot is not None and snapshot.event == "snapshot"
    assert snapshot.id == snapshot.data["revision"] >= first
    assert [d["name"] for d in snapshot.data["items"]] == ["a"]

    revisions = [put(api, "prod/b", limits(2)), put(api, "other/y", limits(3))]
    revisions.append(put(api, "prod/a", limits(4)))
    assert api.delete("/v1/configs/prod/b").status_code == 200
    got = events(reader, 3)
    assert [(e.event, e.data["name"]) for e in got] == [("put", "b"), ("put", "a"), ("delete", "b")]
    assert [e.id for e in got] == sorted(e.id for e in got)
    assert got[1].data["spec"]["limits"]["chat"]["requests_per_second"] == 4
    assert got[1].data["version"] == 2
    assert got[2].data == {"namespace": "prod", "name": "b", "revision": got[2].id}
    reader.close()


def test_several_namespaces_in_one_stream(svc: RunningService, api: httpx.Client) -> None:
    reader = watch(svc, "prod", "staging")
    snapshot = reader.next()
    assert snapshot is not None and snapshot.data["namespaces"] == ["prod", "staging"]
    put(api, "staging/a", limits(1))
    put(api, "dev/a", limits(1))
    put(api, "prod/a", limits(1))
    got = events(reader, 2)
    assert [e.data["namespace"] for e in got] == ["staging", "prod"]
    reader.close()


@pytest.mark.parametrize("how", ["last_event_id", "since"])
def test_resume_sends_every_later_change_once(
    svc: RunningService, api: httpx.Client, how: str
) -> None:
    resume_from = put(api, "prod/a", limits(1))
    later = [put(api, "prod/a", limits(n)) for n in range(2, 6)]
    later.append(put(api, "prod/b", limits(7)))
    reader = watch(svc, "prod", **{how: resume_from})
    got = events(reader, len(later))
    assert [e.id for e in got] == later
    assert all(e.event == "put" for e in got)
    newest = put(api, "prod/a", limits(10))
    event = reader.next()
    assert event is not None and event.id == newest
    with pytest.raises(TimeoutError):
        reader.next(timeout=KEEPALIVE * 3)
    reader.close()


def test_resume_from_before_this_process_replays_history(
    etcd: EtcdProcess, svc: RunningService, api: httpx.Client
) -> None:
    """A fresh instance has an empty ring: the catch-up comes from the history records."""
    resume_from = put(api, "prod/a", limits(1))
    later = [put(api, "prod/a", limits(2)), put(api, "prod/b", limits(3))]
    assert api.delete("/v1/configs/prod/a").status_code == 200
    second = start_service(etcd, keepalive=KEEPALIVE)
    try:
        reader = watch(second, "prod", last_event_id=resume_from)
        got = events(reader, 3)
        assert [e.event for e in got] == ["put", "put", "delete"]
        assert [e.id for e in got[:2]] == later
        live = put(api, "prod/c", limits(4))
        event = reader.next()
        assert event is not None and event.id == live
        reader.close()
    finally:
        second.stop()


def test_resume_survives_etcd_compaction(
    etcd: EtcdProcess, svc: RunningService, api: httpx.Client
) -> None:
    resume_from = put(api, "prod/a", limits(1))
    later = [put(api, "prod/a", limits(n)) for n in range(2, 5)]
    compacted = httpx.post(
        f"{etcd.client_url}/v3/kv/compaction", json={"revision": later[-1], "physical": True}
    )
    assert compacted.status_code == 200, compacted.text
    second = start_service(etcd, keepalive=KEEPALIVE)
    try:
        reader = watch(second, "prod", since=resume_from)
        assert [e.id for e in events(reader, 3)] == later
        reader.close()
    finally:
        second.stop()


def test_resume_past_trimmed_history_gets_a_snapshot(
    etcd: EtcdProcess, service_factory: Callable[..., RunningService]
) -> None:
    svc = service_factory(keepalive=KEEPALIVE, history_limit=2)
    with svc.client() as api:
        resume_from = put(api, "prod/a", limits(1))
        for n in range(2, 6):
            put(api, "prod/a", limits(n))
    second = start_service(etcd, keepalive=KEEPALIVE, history_limit=2)
    try:
        reader = watch(second, "prod", since=resume_from)
        first = reader.next()
        assert first is not None and first.event == "snapshot"
        assert first.data["items"][0]["version"] == 5
        reader.close()
    finally:
        second.stop()


def test_keepalive_comments(svc: RunningService) -> None:
    reader = watch(svc, "prod")
    assert reader.next() is not None  # snapshot
    comment = reader.next(timeout=KEEPALIVE * 10, comments=True)
    assert comment is not None and comment.event == "comment" and comment.comment == "keep-alive"
    reader.close()


def test_auth_and_namespace_patterns(svc: RunningService, api: httpx.Client) -> None:
    response = httpx.get(f"{svc.url}/v1/watch", params={"namespace": "prod"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    token = api.post(
        "/v1/tokens", json={"name": "r", "role": "reader", "namespaces": ["team-a-*"]}
    ).json()["token"]
    denied = httpx.get(
        f"{svc.url}/v1/watch",
        params=[("namespace", "team-a-1"), ("namespace", "prod")],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert denied.status_code == 403
    missing = httpx.get(f"{svc.url}/v1/watch", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 400
    reader = SseReader(svc.url, token, ["team-a-1"])
    assert reader.status_code == 200
    assert reader.next() is not None
    reader.close()


def test_secrets_masked_for_tokens_without_secrets(svc: RunningService, api: httpx.Client) -> None:
    put(api, "prod/models", models("sk-first-secret"))
    plain = api.post(
        "/v1/tokens", json={"name": "plain", "role": "reader", "namespaces": ["*"]}
    ).json()["token"]
    trusted = api.post(
        "/v1/tokens", json={"name": "svc", "role": "reader", "namespaces": ["*"], "secrets": True}
    ).json()["token"]
    masked_reader = SseReader(svc.url, plain, ["prod"])
    clear_reader = SseReader(svc.url, trusted, ["prod"])
    masked_snapshot, clear_snapshot = masked_reader.next(), clear_reader.next()
    assert masked_snapshot is not None and clear_snapshot is not None
    assert masked_snapshot.data["items"][0]["spec"]["endpoints"]["a"]["api_key"] == "****"
    assert clear_snapshot.data["items"][0]["spec"]["endpoints"]["a"]["api_key"] == "sk-first-secret"
    put(api, "prod/models", models("sk-second-secret"))
    masked_put, clear_put = masked_reader.next(), clear_reader.next()
    assert masked_put is not None and clear_put is not None
    assert masked_put.data["spec"]["endpoints"]["a"]["api_key"] == "****"
    assert clear_put.data["spec"]["endpoints"]["a"]["api_key"] == "sk-second-secret"
    masked_reader.close()
    clear_reader.close()


def test_revoked_token_stream_is_closed(svc: RunningService, api: httpx.Client) -> None:
    token = api.post(
        "/v1/tokens", json={"name": "soon-gone", "role": "reader", "namespaces": ["*"]}
    ).json()["token"]
    reader = SseReader(svc.url, token, ["prod"])
    assert reader.next() is not None
    started = time.monotonic()
    assert api.delete("/v1/tokens/soon-gone").status_code == 200
    assert reader.next(timeout=5) is None
    assert time.monotonic() - started < 5
    assert (
        httpx.get(
            f"{svc.url}/v1/watch",
            params={"namespace": "prod"},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 401
    )
    reader.close()


def test_shutdown_closes_streams_promptly(etcd: EtcdProcess) -> None:
    svc = start_service(etcd, keepalive=30)
    reader = watch(svc, "prod")
    assert reader.next() is not None
    started = time.monotonic()
    svc.stop()
    assert reader.next(timeout=5) is None
    assert time.monotonic() - started < 3, "stream was not closed when shutdown began"
    assert not svc.thread.is_alive()
    reader.close()


def test_stream_survives_etcd_restart(
    etcd: EtcdProcess, svc: RunningService, api: httpx.Client
) -> None:
    reader = watch(svc, "prod")
    assert reader.next() is not None
    before = put(api, "prod/a", limits(1))
    event = reader.next()
    assert event is not None and event.id == before
    etcd.kill()
    etcd.restart()
    deadline = time.monotonic() + 15
    while True:
        response = api.put("/v1/configs/prod/a", json=limits(2))
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, "service did not recover"
        time.sleep(0.2)
    event = reader.next(timeout=15)
    assert event is not None and event.event == "put" and event.id == response.json()["revision"]
    reader.close()


def test_frozen_etcd_does_not_lose_events(
    etcd: EtcdProcess, svc: RunningService, api: httpx.Client
) -> None:
    reader = watch(svc, "prod")
    assert reader.next() is not None
    etcd.signal(signal.SIGSTOP)
    time.sleep(1)
    etcd.signal(signal.SIGCONT)
    revision = put(api, "prod/a", limits(3))
    event = reader.next(timeout=15)
    assert event is not None and event.id == revision
    reader.close()


def test_resume_point_beyond_the_store_gets_a_snapshot(
    svc: RunningService, api: httpx.Client
) -> None:
    """E.g. etcd restored from an older backup: the client must not wait for revisions."""
    revision = put(api, "prod/a", limits(1))
    reader = watch(svc, "prod", since=revision + 1000)
    first = reader.next()
    assert first is not None and first.event == "snapshot"
    assert first.data["items"][0]["revision"] == revision
    live = put(api, "prod/a", limits(2))
    event = reader.next()
    assert event is not None and event.id == live
    reader.close()


def subscribers(api: httpx.Client) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("configsvc_watch_subscribers "):
            return float(line.split()[1])
    raise AssertionError("no subscriber gauge")


@pytest.mark.slow  # 9-11 s; the regular suite drops a reader 4 MiB behind (badinput/test_limits)
def test_slow_subscriber_is_dropped_and_others_go_on(
    svc: RunningService, api: httpx.Client
) -> None:
    host, port = svc.url.removeprefix("http://").split(":")
    stalled = socket.create_connection((host, int(port)))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(
        b"GET /v1/watch?namespace=prod HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {svc.admin_token}\r\n\r\n".encode()
    )
    reader = watch(svc, "prod")
    assert reader.next() is not None
    assert subscribers(api) == 2
    many = {f"limit-{i}": {"requests_per_second": 1} for i in range(8000)}
    revisions = []
    for n in range(40):
        many["limit-0"] = {"requests_per_second": n + 1}
        revisions.append(put(api, "prod/big", {"kind": "RateLimits", "spec": {"limits": many}}))
    got = [e.id for e in events(reader, len(revisions))]
    assert got == revisions
    deadline = time.monotonic() + 10
    while subscribers(api) != 1:
        assert time.monotonic() < deadline, "the stalled stream was not dropped"
        time.sleep(0.1)
    stalled.close()
    reader.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_live_streams_are_taken_from_uvicorn_on_every_event_loop(
    etcd: EtcdProcess, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under uvloop (uvicorn's default when installed) and asyncio alike, a live stream is
    written to directly and held by no uvicorn connection state or request task: the
    generic per-stream task path, or uvicorn's state, costs far more memory per stream."""
    pytest.importorskip(loop)
    import configsvc.api.watch as watch_module

    generic: list[object] = []
    original = watch_module.SendWriter

    def record(*args: Any) -> Any:
        generic.append(args)
        return original(*args)

    monkeypatch.setattr(watch_module, "SendWriter", record)
    svc = start_service(etcd, keepalive=KEEPALIVE, uvicorn_loop=loop)
    try:
        with svc.client() as api:
            reader = watch(svc, "prod")
            assert reader.next() is not None  # the snapshot
            state = svc.server.server_state
            deadline = time.monotonic() + 10
            while state.connections or state.tasks:
                assert time.monotonic() < deadline, "uvicorn still holds the stream"
                time.sleep(0.02)
            assert subscribers(api) == 1
            revision = put(api, "prod/limits", {"kind": "RateLimits", "spec": {}})
            event = reader.next()
            assert event is not None and (event.event, event.id) == ("put", revision)
        assert generic == []
    finally:
        svc.stop()
    assert reader.next() is None, "shutdown did not end the stream"
    reader.close()


# ---- streams that start together share snapshot reads ------------------------------------


def wait_for_subscribers(api: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 10
    while subscribers(api) != count:
        assert time.monotonic() < deadline, f"never {count} subscribers"
        time.sleep(0.01)


def test_a_stream_joining_a_read_in_flight_gets_the_changes_since_it_began(
    svc: RunningService, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared read returns revision R; changes after R that were published before the
    second stream joined come from the ring, the later ones live: each exactly once."""
    put(api, "prod/a", limits(1))
    released = threading.Event()
    reads: list[int] = []
    original = Replayer.snapshot

    async def held_snapshot(self: Replayer, namespaces: Any) -> Snapshot:
        snapshot = await original(self, namespaces)
        reads.append(snapshot.revision)
        await asyncio.to_thread(released.wait, 10)
        return snapshot

    monkeypatch.setattr(Replayer, "snapshot", held_snapshot)
    first = watch(svc, "prod")
    wait_for_subscribers(api, 1)
    between = [put(api, "prod/a", limits(2)), put(api, "prod/b", limits(3))]
    second = watch(svc, "prod")
    wait_for_subscribers(api, 2)
    released.set()
    after = put(api, "prod/a", limits(4))

    assert len(reads) == 1, "the second stream did not share the read in flight"
    for reader in (first, second):
        got = events(reader, 4)
        assert got[0].event == "snapshot" and got[0].id == reads[0]
        assert {item["name"]: item["spec"]["limits"]["chat"]["requests_per_second"]
                for item in got[0].data["items"]} == {"a": 1}  # fmt: skip
        assert [(e.event, e.id) for e in got[1:]] == [("put", r) for r in [*between, after]]
        reader.close()


def test_resumes_from_one_point_share_the_replay_and_miss_nothing(
    service_factory: Callable[..., RunningService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted instance (empty ring) resuming many clients from the same revision reads
    the history once; a stream joining that read late gets the ring's newer events."""
    writer = service_factory(keepalive=KEEPALIVE)
    with writer.client() as api:
        since = put(api, "prod/a", limits(1))
        missed = put(api, "prod/a", limits(2))
    restarted = service_factory(keepalive=KEEPALIVE)  # its ring starts after `missed`
    released = threading.Event()
    reads: list[int] = []
    original = Replayer.changes_since

    async def held_changes(self: Replayer, namespaces: Any, since: int) -> Any:
        replay = await original(self, namespaces, since)
        reads.append(since)
        await asyncio.to_thread(released.wait, 10)
        return replay

    monkeypatch.setattr(Replayer, "changes_since", held_changes)
    with restarted.client() as api:
        first = watch(restarted, "prod", since=since)
        wait_for_subscribers(api, 1)
        between = [put(api, "prod/a", limits(3)), put(api, "prod/b", limits(4))]
        second = watch(restarted, "prod", since=since)
        wait_for_subscribers(api, 2)
        released.set()
        after = put(api, "prod/a", limits(5))

    assert reads == [since], "the second stream did not share the replay in flight"
    for reader in (first, second):
        got = events(reader, 4)
        assert [(e.event, e.id) for e in got] == [("put", r) for r in [missed, *between, after]]
        assert got[0].data["spec"]["limits"]["chat"]["requests_per_second"] == 2
        reader.close()


def test_a_burst_of_streams_shares_reads_and_each_sees_every_change_once(
    svc: RunningService, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = 40
    reads: list[int] = []
    original = Replayer.snapshot

    async def counted_snapshot(self: Replayer, namespaces: Any) -> Snapshot:
        snapshot = await original(self, namespaces)
        reads.append(snapshot.revision)
        return snapshot

    monkeypatch.setattr(Replayer, "snapshot", counted_snapshot)
    put(api, "prod/a", limits(1))
    revisions: list[int] = []
    writing = threading.Thread(
        target=lambda: revisions.extend(put(api, "prod/a", limits(rps)) for rps in range(2, 22))
    )
    readers: list[SseReader] = []
    openers = [
        threading.Thread(target=lambda: readers.append(watch(svc, "prod"))) for _ in range(streams)
    ]
    writing.start()
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join()
    writing.join()
    wait_for_subscribers(api, streams)
    last = put(api, "prod/a", limits(99))
    for reader in readers:
        snapshot = reader.next()
        assert snapshot is not None and snapshot.event == "snapshot"
        expected = [r for r in [*revisions, last] if r > snapshot.id]
        got = events(reader, len(expected))
        assert [e.id for e in got] == expected
        assert got[-1].data["spec"]["limits"]["chat"]["requests_per_second"] == 99
        reader.close()
    assert len(reads) < streams


def test_a_stream_whose_catch_up_fails_ends_and_the_client_can_resume(
    service_factory: Callable[..., RunningService], etcd: EtcdProcess
) -> None:
    """etcd frozen while a stream starts: its snapshot read times out, the stream ends
    cleanly with a comment that says why (never an empty 200), and nothing is left
    registered."""
    svc = service_factory(keepalive=KEEPALIVE, store_timeout=0.5)
    with svc.client() as api:
        revision = put(api, "prod/a", limits(1))
        etcd.signal(signal.SIGSTOP)
        try:
            reader = watch(svc, "prod")
            said = reader.next(timeout=10, comments=True)
            assert said is not None and said.comment is not None
            assert said.comment.startswith("stream ended: etcd"), said.comment
            assert reader.next(timeout=10) is None, "the stream did not end"
        finally:
            etcd.signal(signal.SIGCONT)
        wait_for_subscribers(api, 0)
        resumed = watch(svc, "prod")
        snapshot = resumed.next()
        assert snapshot is not None and snapshot.event == "snapshot" and snapshot.id >= revision
        resumed.close()
        reader.close()
