"""What fleet reports cost the service and etcd: N SDK instances reporting every I seconds.

Run: .venv/bin/python bench/fleet_reports.py                 # N = 10,000, I = 30 s (~4 min)
     .venv/bin/python bench/fleet_reports.py --quick         # N = 1,000, I = 5 s (~40 s)
     .venv/bin/python bench/fleet_reports.py --streams       # then the same with watch streams
Options: --clients N, --interval I, --steady S (seconds measured at steady state, default
2 x I), --keepalive (reporters keep their connections; default: a new connection per report,
as the SDK does: at a 30 s interval its idle connection is long closed), --results PATH,
--streams (after all of the above, stream mode: see below), --stream-steady S (seconds of
stream mode's steady state, default 4 x I + 10).

What runs where: etcd (default raft timers), the service (`_service.py`, uvicorn as
deployed), the floor (`_report_floor.py`: the same uvicorn answering 204 to any POST, with
no token, JSON or store), and N lean reporters in this process (one asyncio loop; each
instance's report is built once and sent as raw bytes at its own phase of the interval).

Figures:
- steady state: reports that change nothing, for S seconds: the service's CPU as a
  fraction of one core, next to the floor's under the same traffic (its ratio is the
  fleet code's own cost); etcd's writes per second (store revisions, i.e. committed
  writes), bytes written, raft proposals, and etcd's CPU.
- registration: every instance's first report (each writes its record).
- a change: every instance reports a new version within a second (the push reaches them
  all at once); writes, transactions, and the time until `GET .../fleet` shows all on it.
- reads at N: `GET /v1/fleet?namespace=` and `GET /v1/configs/{ns}/{name}/fleet`.
- memory: the service's RSS growth per instance in the fleet.

Stream mode (`--streams`, after the figures above, in the same run): each instance opens its
watch stream (`GET /v1/watch`, named with `X-Configsvc-Instance`, the reporting token), which
the service counts as the instance's periodic report; the reporters then send each
instance's unchanged report only every `VOUCHED_REPORTS_EVERY`-th interval, as the SDK does.
First the streams are held open with no report at all (max(I, keep-alive) seconds); then,
over S seconds (longer than the silence after which an instance is removed), the same
reports going to the floor: the service's CPU, etcd's writes, the heartbeats the streams
stood for (`streamed`), beside the report-mode steady state above; then a check that the
fleet still lists every instance (the exit status is 1 when not). Its results go
to their own section of the results file (between `STREAMS_MARKER` and the analysis), which
the other runs keep, as stream runs keep the report-mode section.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import random
import sys
import tempfile
import time
import typing
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _procfs import CpuSample, rss_bytes
from configsvc_schemas.wire import (
    INSTANCE_HEADER,
    MISSED_REPORTS,
    STREAM_LIVENESS,
    STREAM_LIVENESS_HEADER,
)
from propagation import (
    ADMIN_TOKEN,
    ANALYSIS_MARKER,
    HOST,
    KEEPALIVE,
    ServerProcess,
    existing_analysis,
    log,
    quantile,
    run_async,
    spawn,
    start_service,
)

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.fleet.service import FleetOptions
from configsvc.rlimits import raise_open_files_limit
from configsvc.settings import MAX_WATCH_STREAMS

NAMESPACE = "bench"
DOCUMENTS = ("chat-models", "limits", "keys")
TARGET_CORE = 0.05
TARGET_WRITES = 50.0
TARGET_N, TARGET_INTERVAL = 10_000, 30.0
CHANGE_SPREAD = 1.0
"""Seconds over which every instance reports a change."""
KEEPALIVE_CONNECTIONS = 64
SETTLE = 1.5
IDLE = 10.0
"""Seconds the service's CPU is measured with the fleet registered and no report coming
(at most half an interval: no instance may go silent for long enough to be removed)."""
"""Seconds for what the service heard to reach etcd between phases."""
ETCD_COUNTERS = (
    "etcd_mvcc_put_total",
    "etcd_mvcc_delete_total",
    "etcd_server_proposals_committed_total",
)
RESULTS_PATH = Path(__file__).resolve().parent / "FLEET_RESULTS.md"
STREAMS_MARKER = "<!-- stream mode: written by `fleet_reports.py --streams`, kept by other runs -->"
VOUCHED_REPORTS_EVERY = 10
"""While its stream stands for its reports, an SDK instance sends every 10th unchanged
report (`configsvc_client._fleet.VOUCHED_REPORTS_EVERY`)."""
STREAM_OPENING = 200
"""Watch streams being opened at once."""
STREAM_OPEN_TIMEOUT = 60.0
"""Seconds a watch stream's answer (its status line and headers) may take."""
FD_RESERVE = 1024
"""File descriptors this process keeps beyond its watch streams (reports, etcd, HTTP)."""
STREAMED = 'configsvc_fleet_reports_total{result="streamed"}'


# ---- the lean reporters -------------------------------------------------------------------


def instance_id(n: int) -> str:
    return f"bench-host-{n:05d}-0123abcd"


def report_body(n: int, version: int, interval: float) -> bytes:
    at = "2026-11-22T01:02:03.456Z"
    documents = {
        f"{NAMESPACE}/{name}": {"version": version, "revision": 10 + version, "applied_at": at}
        for name in DOCUMENTS
    }
    body = {
        "instance": instance_id(n),
        "app": "gateway",
        "labels": {"region": "eu" if n % 2 else "us", "tier": "a"},
        "sdk": "configsvc_client/0.1.0",
        "host": f"bench-host-{n:05d}",
        "pid": 1000 + n,
        "mode": "streaming",
        "documents": documents,
        "rejected": {},
        "namespaces": [NAMESPACE],
        "report_interval": interval,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def request(body: bytes, token: str, keepalive: bool) -> bytes:
    head = (
        f"POST /v1/fleet/reports HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if not keepalive:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class Sent:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    instances: set[int] = field(default_factory=set)
    """The instances that reported."""


class Reporters:
    """N instances' reports, sent at their phases (new connection each, or a kept pool)."""

    def __init__(self, n: int, interval: float, token: str, keepalive: bool, seed: int = 1):
        self.n, self.interval, self.token, self.keepalive = n, interval, token, keepalive
        rng = random.Random(seed)
        self.phases = sorted((rng.uniform(0, interval), i) for i in range(n))
        self.requests = [request(report_body(i, 1, interval), token, keepalive) for i in range(n)]
        self._pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None

    def set_version(self, version: int) -> None:
        self.requests = [
            request(report_body(i, version, self.interval), self.token, self.keepalive)
            for i in range(self.n)
        ]

    async def run(
        self, port: int, seconds: float, spread: float | None = None, every: int = 1
    ) -> Sent:
        """Each instance reports at its phase, every interval (with `every`, only every
        `every`-th interval, each instance at its own turn), for `seconds` (or, with
        `spread`, each once within `spread` seconds)."""
        sent = Sent()
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        if self.keepalive and self._pool is None:
            self._pool = asyncio.Queue()
            for _ in range(KEEPALIVE_CONNECTIONS):
                self._pool.put_nowait(await asyncio.open_connection(HOST, port))
        start = loop.time()
        if spread is not None:
            schedule = sorted((random.uniform(0, spread), i) for i in range(self.n))
        else:
            rounds = int(seconds // self.interval) + 1
            schedule = [
                (k * self.interval + p, i)
                for k in range(rounds)
                for p, i in self.phases
                if (k + i) % every == 0
            ]
            schedule = [(t, i) for t, i in schedule if t < seconds]
        for at, i in schedule:
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.instances.add(i)
            task = loop.create_task(self._send(port, self.requests[i], sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return sent

    async def _send(self, port: int, data: bytes, sent: Sent) -> None:
        started = time.perf_counter()
        if self._pool is not None:
            reader, writer = await self._pool.get()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            if length:
                await reader.readexactly(length)
            self._pool.put_nowait((reader, writer))
        else:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(data)
            head = await reader.read()
            writer.close()
        sent.latencies.append(time.perf_counter() - started)
        sent.statuses[int(head[9:12])] += 1

    async def close(self) -> None:
        while self._pool is not None and not self._pool.empty():
            _, writer = self._pool.get_nowait()
            writer.close()
        self._pool = None


# ---- the watch streams -------------------------------------------------------------------


def watch_request(instance: str, token: str) -> bytes:
    return (
        f"GET /v1/watch?namespace={NAMESPACE} HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
        f"{INSTANCE_HEADER}: {instance}\r\n\r\n"
    ).encode()


@dataclass
class StreamTally:
    received: int = 0
    """Bytes received on all streams (answers, events, keep-alives)."""
    ended: list[str] = field(default_factory=list)
    """Instances whose stream the service ended (not this process)."""


class WatchStream(asyncio.Protocol):
    """One instance's watch stream: its answer's head, then every byte read and counted (no
    task, no buffer: the service never sees a slow reader)."""

    def __init__(self, instance: str, tally: StreamTally) -> None:
        self.instance, self.tally = instance, tally
        self.answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self._head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.tally.received += len(data)
        if not self.answered.done():
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end >= 0:
                self.answered.set_result(self._head[:end])
                self._head = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(ConnectionError(f"{self.instance}: closed unanswered"))
        elif not self.closing:
            self.tally.ended.append(self.instance)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def check_watch_answer(instance: str, head: bytes) -> None:
    """A 200 that says the stream stands for the instance's reports; else raise."""
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    liveness = headers.get(STREAM_LIVENESS_HEADER.lower().encode())
    if status.split(b" ")[1:2] != [b"200"] or liveness != STREAM_LIVENESS.encode():
        raise RuntimeError(
            f"the watch stream of {instance} was answered without "
            f"`{STREAM_LIVENESS_HEADER}: {STREAM_LIVENESS}`:\n{head.decode(errors='replace')}"
        )


class Streams:
    """N instances' watch streams, opened `STREAM_OPENING` at a time."""

    def __init__(self, n: int, token: str) -> None:
        self.n, self.token = n, token
        self.tally = StreamTally()
        self.open: list[WatchStream] = []

    async def open_all(self, port: int) -> None:
        gate = asyncio.Semaphore(STREAM_OPENING)

        async def one(n: int) -> None:
            async with gate:
                self.open.append(await self._open(port, instance_id(n)))

        await asyncio.gather(*(one(n) for n in range(self.n)))

    async def _open(self, port: int, instance: str) -> WatchStream:
        loop = asyncio.get_running_loop()
        stream = WatchStream(instance, self.tally)
        try:
            await loop.create_connection(lambda: stream, HOST, port)
            assert stream.transport is not None
            stream.transport.write(watch_request(instance, self.token))
            async with asyncio.timeout(STREAM_OPEN_TIMEOUT):
                head = await stream.answered
            check_watch_answer(instance, head)
        except BaseException:
            stream.close()
            raise
        return stream

    def close(self) -> None:
        for stream in self.open:
            stream.close()
        self.open = []


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


# ---- what etcd and the service say --------------------------------------------------------


def etcd_counters(etcd: EtcdProcess) -> dict[str, float]:
    text = httpx.get(f"http://{HOST}:{etcd.client_port}/metrics", timeout=5).text
    found = dict.fromkeys(ETCD_COUNTERS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    key = base64.b64encode(b"\0").decode()
    answer = httpx.post(
        f"http://{HOST}:{etcd.client_port}/v3/kv/range",
        json={"key": key, "range_end": key, "count_only": True},
        timeout=5,
    ).json()
    found["revision"] = float(answer["header"]["revision"])
    return found


SERVICE_COUNTERS = (
    "configsvc_fleet_store_writes_total",
    "configsvc_fleet_store_bytes_total",
    "configsvc_fleet_reports_total",
)


def service_counters(url: str, prefixes: tuple[str, ...] = SERVICE_COUNTERS) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(prefixes):
            name, _, value = line.rpartition(" ")
            found[name] = found.get(name, 0.0) + float(value)
    return found


@dataclass
class Window:
    """CPU and store activity over one phase."""

    wall: float
    cpu: dict[str, float]
    other_load: float
    etcd: dict[str, float]
    service: dict[str, float]

    def per_second(self, name: str) -> float:
        return self.etcd.get(name, 0.0) / self.wall


class Meter:
    def __init__(self, etcd: EtcdProcess, pids: dict[str, int], url: str) -> None:
        self.etcd, self.pids, self.url = etcd, pids, url

    def start(self) -> tuple[float, CpuSample, dict[str, float], dict[str, float]]:
        return (
            time.monotonic(),
            CpuSample.take(list(self.pids.values())),
            etcd_counters(self.etcd),
            service_counters(self.url),
        )

    def stop(self, started: tuple[float, CpuSample, dict[str, float], dict[str, float]]) -> Window:
        t0, cpu0, etcd0, svc0 = started
        wall = time.monotonic() - t0
        delta = CpuSample.take(list(self.pids.values())).since(cpu0)
        etcd1, svc1 = etcd_counters(self.etcd), service_counters(self.url)
        return Window(
            wall,
            {name: delta.per_pid[pid] for name, pid in self.pids.items()},
            delta.foreign / wall,
            {k: etcd1[k] - etcd0.get(k, 0.0) for k in etcd1},
            {k: svc1[k] - svc0.get(k, 0.0) for k in svc1},
        )


# ---- the run ------------------------------------------------------------------------------


def start_floor(workdir: Path) -> ServerProcess:
    port = free_port()
    log_path = workdir / "report-floor.log"
    proc = spawn("floor", "_report_floor.py", [str(port)], log_path)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("the report floor did not start")
    return ServerProcess("floor", proc, port, log_path)


def timed_get(client: httpx.Client, path: str, params: dict[str, str] | None, times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return quantile(samples, 0.5)


def prepare(url: str) -> tuple[str, dict[str, int]]:
    """The documents of the bench namespace (version 1) and a reader token for reports."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
        for name in DOCUMENTS:
            spec = {"limits": {name: {"requests_per_second": 1}}}
            api.put(f"/v1/configs/{NAMESPACE}/{name}", json={"kind": "RateLimits", "spec": spec})
        body = {"name": "bench-fleet", "role": "reader", "namespaces": [NAMESPACE]}
        token: str = api.post("/v1/tokens", json=body).json()["token"]
    return token, {}


async def measure(args: argparse.Namespace, etcd: EtcdProcess, service: ServerProcess,
                  floor: ServerProcess) -> dict[str, Any]:  # fmt: skip
    url = f"http://{HOST}:{service.port}"
    token, _ = prepare(url)
    meter = Meter(etcd, {"service": service.pid, "floor": floor.pid, "etcd": etcd.pid or 0}, url)
    reporters = Reporters(args.clients, args.interval, token, args.keepalive)
    results: dict[str, Any] = {}
    rss_before = rss_bytes(service.pid)
    log(f"registration: {args.clients:,} first reports over {args.interval:g} s")
    started = meter.start()
    results["registration_sent"] = await reporters.run(service.port, args.interval)
    await asyncio.sleep(SETTLE)
    results["registration"] = meter.stop(started)
    results["rss_per_instance"] = (rss_bytes(service.pid) - rss_before) / args.clients
    idle = min(IDLE, args.interval / 2)
    log(f"idle: {idle:g} s with no report (the fleet's timers over {args.clients:,} records)")
    started = meter.start()
    await asyncio.sleep(idle)
    results["idle"] = meter.stop(started)
    log(f"steady state: {args.steady:g} s, the same reports to the service and the floor")
    await reporters.close()
    twins = Reporters(args.clients, args.interval, token, args.keepalive)
    started = meter.start()
    results["service_sent"], results["floor_sent"] = await asyncio.gather(
        reporters.run(service.port, args.steady), twins.run(floor.port, args.steady)
    )
    results["steady"] = meter.stop(started)
    await twins.close()
    await asyncio.sleep(SETTLE)
    log(f"a change: {args.clients:,} reports of version 2 within {CHANGE_SPREAD:g} s")
    await reporters.close()
    reporters.set_version(2)
    started = meter.start()
    t0 = time.monotonic()
    results["change_sent"] = await reporters.run(service.port, 0, spread=CHANGE_SPREAD)
    results["change_answered"] = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/v1/configs/{NAMESPACE}/{DOCUMENTS[0]}/fleet"
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        while (await client.get(path)).json()["on_version"].get("2") != args.clients:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    results["change_converged"] = time.monotonic() - t0
    with httpx.Client(base_url=url, headers=headers) as api:
        await asyncio.sleep(SETTLE)
        results["change"] = meter.stop(started)
        log("reads at N")
        results["get_fleet"] = timed_get(api, "/v1/fleet", {"namespace": NAMESPACE}, 5)
        results["get_document_fleet"] = timed_get(api, path, None, 5)
    await reporters.close()
    if args.streams:
        results["streams"] = await measure_streams(
            args, service, floor, meter, reporters, token, results["change_answered"]
        )
    return results


async def listed(url: str, token: str) -> set[str]:
    """The instances `GET /v1/fleet?namespace=` lists."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        response = await client.get("/v1/fleet", params={"namespace": NAMESPACE})
    response.raise_for_status()
    return {item["instance"] for item in response.json()["items"]}


async def measure_streams(
    args: argparse.Namespace,
    service: ServerProcess,
    floor: ServerProcess,
    meter: Meter,
    reporters: Reporters,
    token: str,
    last_report: float,
) -> dict[str, Any]:
    """Stream mode: the instances' watch streams stand for their reports (see the top)."""
    url = f"http://{HOST}:{service.port}"
    r: dict[str, Any] = {}
    streams = Streams(args.clients, token)
    rss_before = rss_bytes(service.pid)
    log(f"streams: opening {args.clients:,} watch streams, {STREAM_OPENING} at a time")
    started = meter.start()
    try:
        await streams.open_all(service.port)
        await asyncio.sleep(SETTLE)
        r["opening"] = meter.stop(started)
        r["rss_per_stream"] = (rss_bytes(service.pid) - rss_before) / args.clients
        gauge = service_counters(url, ("configsvc_watch_subscribers",))
        r["subscribers"] = gauge.get("configsvc_watch_subscribers", 0.0)
        r["listed_before"] = len(await listed(url, token))
        silent = max(args.interval, KEEPALIVE)
        log(f"streams open, no report: {silent:g} s")
        started = meter.start()
        await asyncio.sleep(silent)
        r["silent"] = meter.stop(started)
        vouched = args.clients / VOUCHED_REPORTS_EVERY / args.interval
        log(
            f"stream mode: {args.stream_steady:g} s, each instance's unchanged report every "
            f"{VOUCHED_REPORTS_EVERY}th interval ({vouched:.1f}/s), the same to the floor"
        )
        twins = Reporters(args.clients, args.interval, token, args.keepalive)
        received = streams.tally.received
        started = meter.start()
        r["sent"], r["floor_sent"] = await asyncio.gather(
            reporters.run(service.port, args.stream_steady, every=VOUCHED_REPORTS_EVERY),
            twins.run(floor.port, args.stream_steady, every=VOUCHED_REPORTS_EVERY),
        )
        r["steady"] = meter.stop(started)
        await twins.close()
        r["received"] = streams.tally.received - received
        r["ended"] = list(streams.tally.ended)
        found = await listed(url, token)
        r["silent_for"] = time.monotonic() - last_report
    finally:
        streams.close()
        await reporters.close()
    expected = {instance_id(n) for n in range(args.clients)}
    r["missing"] = sorted(expected - found)
    r["unreported"] = args.clients - len(r["sent"].instances)
    if r["missing"] or r["ended"]:
        log(
            f"FAILED: {len(r['missing']):,} of {args.clients:,} instances removed from the "
            f"fleet, {len(r['ended']):,} streams ended by the service"
        )
    return r


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def render(args: argparse.Namespace, r: dict[str, Any], command: str, started: str) -> str:
    steady, idle = r["steady"], r["idle"]
    sent, floor_sent = r["service_sent"], r["floor_sent"]
    rate = sum(sent.statuses.values()) / steady.wall
    floor_rate = sum(floor_sent.statuses.values()) / steady.wall
    core = steady.cpu["service"] / steady.wall
    floor_core = steady.cpu["floor"] / steady.wall
    idle_core = idle.cpu["service"] / idle.wall
    per_report = (core - idle_core) / rate * 1e6
    floor_per_report = floor_core / floor_rate * 1e6
    writes = steady.per_second("revision")
    connections = "kept-alive connections" if args.keepalive else "a new connection per report"
    verdict = {True: "**met**", False: "**NOT met**"}
    lines = [
        "# Fleet reports: cost at scale",
        "",
        f"Measured {started} with `{command}`: {args.clients:,} instances reporting every "
        f"{args.interval:g} s ({connections}); steady state measured over {args.steady:g} s, "
        "the same reports going to the service and to the floor at once (both see the same "
        f"machine). Other load on the machine (other processes): {steady.other_load:.2f} "
        "cores.",
        "",
        "| steady state | service | floor (same server, 204) |",
        "|---|---:|---:|",
        f"| reports per second | {rate:.0f} | {floor_rate:.0f} |",
        f"| CPU, fraction of one core | **{core:.4f}** | {floor_core:.4f} |",
        f"| of which with no report coming (timers, sweeps) | {idle_core:.4f} | |",
        f"| CPU per report (µs; service: less the idle part) | {per_report:.0f} "
        f"| {floor_per_report:.0f} |",
        f"| ratio per report | {per_report / floor_per_report:.2f}x | 1 |",
        f"| latency p50 / p99 (ms) | {ms(quantile(sent.latencies, 0.5))} / "
        f"{ms(quantile(sent.latencies, 0.99))} | {ms(quantile(floor_sent.latencies, 0.5))} / "
        f"{ms(quantile(floor_sent.latencies, 0.99))} |",
        f"| answers | {dict(sent.statuses)} | {dict(floor_sent.statuses)} |",
        "",
        "| etcd at steady state | per second |",
        "|---|---:|",
        f"| writes (store revisions) | **{writes:.2f}** |",
        f"| puts | {steady.per_second('etcd_mvcc_put_total'):.2f} |",
        f"| raft proposals | {steady.per_second('etcd_server_proposals_committed_total'):.2f} |",
        f"| fleet bytes written | "
        f"{steady.service.get('configsvc_fleet_store_bytes_total', 0) / steady.wall:,.0f} |",
        f"| etcd CPU (fraction of a core) | {steady.cpu['etcd'] / steady.wall:.4f} |",
        "",
    ]
    if args.clients == TARGET_N and args.interval == TARGET_INTERVAL:
        lines += [
            "| target (issue 13) | measured | verdict |",
            "|---|---|---|",
            f"| service <= {TARGET_CORE:.0%} of a core | {core:.1%} "
            f"| {verdict[core <= TARGET_CORE]} |",
            f"| etcd <= {TARGET_WRITES:g} writes/s | {writes:.2f}/s "
            f"| {verdict[writes <= TARGET_WRITES]} |",
            "",
        ]
    reg, change = r["registration"], r["change"]

    def phase(name: str, window: Window, sent: Sent) -> str:
        records = window.service.get('configsvc_fleet_store_writes_total{what="record"}', 0)
        return (
            f"| {name} | {window.wall:.1f} | {records:,.0f} | {window.etcd['revision']:,.0f} "
            f"| {window.etcd['etcd_server_proposals_committed_total']:,.0f} "
            f"| {window.cpu['service']:.2f} | {dict(sent.statuses)} |"
        )

    lines += [
        "| phase | wall s | records written | etcd writes (revisions) | raft proposals "
        "| service CPU s | answers |",
        "|---|---:|---:|---:|---:|---:|---|",
        phase(f"registration: {args.clients:,} first reports", reg, r["registration_sent"]),
        phase(
            f"a change: all report v2 within {CHANGE_SPREAD:g} s (all shown on it after "
            f"{r['change_converged']:.2f} s)",
            change,
            r["change_sent"],
        ),
        "",
        f"Reads with {args.clients:,} instances: `GET /v1/fleet?namespace={NAMESPACE}` p50 "
        f"{ms(r['get_fleet'])} ms; `GET /v1/configs/{NAMESPACE}/{DOCUMENTS[0]}/fleet` p50 "
        f"{ms(r['get_document_fleet'])} ms. Service memory: "
        f"{r['rss_per_instance'] / 1024:.2f} KiB of RSS per instance in the fleet.",
        "",
    ]
    return "\n".join(lines)


def silence_s(interval: float) -> float:
    """How long an instance may go unheard of before it is removed (at most)."""
    options = FleetOptions()
    return MISSED_REPORTS * interval + options.grace + options.jitter


def render_streams(args: argparse.Namespace, r: dict[str, Any], command: str, started: str) -> str:
    s, report = r["streams"], r["steady"]
    steady, opening, silent = s["steady"], s["opening"], s["silent"]
    wall, report_wall = steady.wall, report.wall
    core, report_core = steady.cpu["service"] / wall, report.cpu["service"] / report_wall
    rate = sum(s["sent"].statuses.values()) / wall
    report_rate = sum(r["service_sent"].statuses.values()) / report_wall
    writes, report_writes = steady.per_second("revision"), report.per_second("revision")
    proposals = "etcd_server_proposals_committed_total"

    def both(label: str, stream: float, reported: float, spec: str, ratio: bool = False) -> str:
        cells = f"| {label} | {reported:{spec}} | {stream:{spec}} |"
        return cells + (f" {stream / reported:.2f}x |" if ratio and reported else " |")

    def fleet_bytes(window: Window) -> float:
        return window.service.get("configsvc_fleet_store_bytes_total", 0.0) / window.wall

    missing, ended = s["missing"], s["ended"]
    silence = silence_s(args.interval)
    if missing or ended:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        verdict = (
            f"**FAILED: {len(missing):,} of {args.clients:,} instances were removed** while "
            f"their streams were open ({shown or 'none'}); {len(ended):,} streams were ended "
            "by the service."
        )
    else:
        verdict = (
            f"**All {args.clients:,} instances still listed** after {wall:.0f} s of stream mode "
            f"(an instance unheard of for {silence:g} s is removed); {s['unreported']:,} of "
            f"them had sent no report for {s['silent_for']:.0f} s (since this run's change "
            "phase, the streams' silent window included): their streams alone held them. No stream "
            "was ended by the service."
        )
    if args.stream_steady <= silence:
        verdict += (
            f" (The window is not longer than the {silence:g} s of silence that removes an "
            "instance: this check proves little.)"
        )
    connections = "kept-alive connections" if args.keepalive else "a new connection per report"
    lines = [
        "## Stream mode: an open watch stream stands for the periodic report",
        "",
        f"Measured {started} with `{command}`: {args.clients:,} instances, interval "
        f"{args.interval:g} s, reports on {connections}. In the same run, first report mode "
        f"as in the section above (every instance reports every interval; steady state over "
        f"{report_wall:.0f} s, the floor receiving the same reports meanwhile; its figures of "
        f"this run are in the report mode column below), then stream mode: "
        f"{args.clients:,} watch streams open, one per instance "
        f"(`{INSTANCE_HEADER}`, the reporting token; each answered "
        f"`{STREAM_LIVENESS_HEADER}: {STREAM_LIVENESS}`), and each instance's unchanged "
        f"report sent only every {VOUCHED_REPORTS_EVERY}th interval, as the SDK does (the "
        f"same reports going to the floor at once); steady state over {wall:.0f} s. Other "
        f"load on the machine (other processes, this benchmark's clients included): "
        f"{report.other_load:.2f} cores "
        f"(report mode), {steady.other_load:.2f} cores (stream mode).",
        "",
        "| steady state, same run | report mode | stream mode | stream / report |",
        "|---|---:|---:|---:|",
        both("reports per second", rate, report_rate, ".1f", ratio=True),
        both(
            "heartbeats noted from open streams per second (`streamed`)",
            steady.service.get(STREAMED, 0.0) / wall,
            report.service.get(STREAMED, 0.0) / report_wall,
            ".1f",
        ),
        f"| watch streams open | 0 | {s['subscribers']:,.0f} | |",
        both("**service CPU, fraction of one core**", core, report_core, ".4f", ratio=True),
        both(
            "floor CPU under the same reports (same server, 204)",
            steady.cpu["floor"] / wall,
            report.cpu["floor"] / report_wall,
            ".4f",
        ),
        both(
            "service CPU less the floor's",
            core - steady.cpu["floor"] / wall,
            report_core - report.cpu["floor"] / report_wall,
            ".4f",
            ratio=True,
        ),
        both("etcd writes (store revisions) per second", writes, report_writes, ".2f"),
        both(
            "raft proposals per second",
            steady.per_second(proposals),
            report.per_second(proposals),
            ".2f",
        ),
        both("fleet bytes written per second", fleet_bytes(steady), fleet_bytes(report), ",.0f"),
        both(
            "etcd CPU, fraction of a core",
            steady.cpu["etcd"] / wall,
            report.cpu["etcd"] / report_wall,
            ".4f",
        ),
        f"| bytes the streams carried per second (keep-alives) | | {s['received'] / wall:,.0f} | |",
        f"| report latency p50 / p99 (ms) | {ms(quantile(r['service_sent'].latencies, 0.5))} / "
        f"{ms(quantile(r['service_sent'].latencies, 0.99))} | "
        f"{ms(quantile(s['sent'].latencies, 0.5))} / {ms(quantile(s['sent'].latencies, 0.99))} "
        "| |",
        f"| answers | {dict(r['service_sent'].statuses)} | {dict(s['sent'].statuses)} | |",
        "",
        f"With no report at all: {r['idle'].cpu['service'] / r['idle'].wall:.4f} of a core "
        f"with no stream open (this run's report mode, idle); "
        f"**{silent.cpu['service'] / silent.wall:.4f}** with the {s['subscribers']:,.0f} "
        f"streams open (over {silent.wall:.0f} s, before stream mode's steady state: "
        f"{silent.service.get(STREAMED, 0.0) / silent.wall:.1f} heartbeats/s noted from the "
        f"streams, {silent.per_second('revision'):.2f} etcd writes/s). Other load: "
        f"{silent.other_load:.2f} cores.",
        "",
    ]
    if args.clients == TARGET_N and args.interval == TARGET_INTERVAL:
        met = {True: "**met**", False: "**NOT met**"}
        lines += [
            "| target (issue 13), stream mode | measured | verdict |",
            "|---|---|---|",
            f"| service <= {TARGET_CORE:.0%} of a core | {core:.1%} | {met[core <= TARGET_CORE]} |",
            f"| etcd <= {TARGET_WRITES:g} writes/s | {writes:.2f}/s "
            f"| {met[writes <= TARGET_WRITES]} |",
            "",
        ]
    lines += [
        f"Fleet check: {s['listed_before']:,} instances listed when the streams were open; "
        f"{args.clients - len(missing):,} at the end. {verdict}",
        "",
        f"Opening the {args.clients:,} streams ({STREAM_OPENING} at a time): {opening.wall:.1f} s, "
        f"{opening.cpu['service']:.2f} s of service CPU, "
        f"{opening.etcd['revision']:,.0f} etcd writes; service memory "
        f"{s['rss_per_stream'] / 1024:.2f} KiB of RSS per stream.",
        "",
    ]
    return "\n".join(lines)


def write_results(path: Path, report: str | None, streams: str | None) -> None:
    """Rewrite `path`: the report-mode section (`report`, or the one there), the stream-mode
    section (`streams`, or the one there, if any), then the analysis there (kept)."""
    try:
        old = path.read_text()
    except OSError:
        old = ""
    analysis = existing_analysis(path)
    kept_report, found, kept_streams = old.partition(ANALYSIS_MARKER)[0].partition(STREAMS_MARKER)
    if report is None:
        report = kept_report.rstrip("\n") + "\n" if kept_report.strip() else ""
    if streams is None and found:
        streams = kept_streams.strip("\n") + "\n"
    if streams:
        text = (
            f"{report}\n{STREAMS_MARKER}\n{streams}" if report else f"{STREAMS_MARKER}\n{streams}"
        )
    else:
        text = report
    path.write_text(f"{text}\n{ANALYSIS_MARKER}\n{analysis}\n" if analysis else text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=TARGET_N)
    parser.add_argument("--interval", type=float, default=TARGET_INTERVAL)
    parser.add_argument("--steady", type=float, default=None)
    parser.add_argument("--keepalive", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--streams", action="store_true")
    parser.add_argument("--stream-steady", type=float, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.interval = 1_000, 5.0
    args.steady = args.steady or 2 * args.interval
    args.stream_steady = args.stream_steady or 4 * args.interval + 10
    open_files = raise_open_files_limit()
    if args.streams and args.clients > MAX_WATCH_STREAMS:
        parser.error(f"the service holds at most {MAX_WATCH_STREAMS:,} streams")
    if args.streams and args.clients + FD_RESERVE > open_files:
        parser.error(f"{args.clients:,} streams need more open files than {open_files:,}")
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python bench/fleet_reports.py", *given])
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    workdir = Path(tempfile.mkdtemp(prefix="configsvc-fleet-bench-"))
    etcd = EtcdProcess(
        binary=find_etcd_binary(), data_dir=workdir / "etcd", log_path=workdir / "etcd.log"
    )
    servers: list[ServerProcess] = []
    try:
        etcd.start()
        servers.append(start_service(etcd.client_url, workdir, "auto"))
        servers.append(start_floor(workdir))
        results = run_async(lambda: measure(args, etcd, servers[0], servers[1]), uvloop_ok=True)
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        etcd.stop()
    text = render(args, results, command, started)
    print(text)
    streams = render_streams(args, results, command, started) if args.streams else None
    if streams is not None:
        print(streams)
    path = args.results or (None if args.quick else RESULTS_PATH)
    if path is not None:
        # a stream run keeps the report-mode section there (its own figures are in its section)
        write_results(path, None if streams is not None else text, streams)
        log(f"wrote {path}")
    failed = streams is not None and bool(
        results["streams"]["missing"] or results["streams"]["ended"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
