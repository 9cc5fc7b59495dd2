"""Propagation benchmark: how fast and how cheaply a change reaches every watcher.

One command measures, side by side in one run, on this machine:

- Fan-out: N SSE streams held by lean readers (asyncio Protocols in this one process that
  only timestamp the bytes of each event id); per REST PUT, the time from the start of the
  PUT to the change's bytes at the LAST stream; p50/p95 over K sequential PUTs, for each N.
- Floor: the same readers against a minimal encode-once SSE server (`_floor.py`, its own
  process); the service's fan-out is reported as a ratio to it.
- Cost: the server process's CPU (utime+stime from /proc) per delivered event, net of an
  idle baseline over the same wall time, and its RSS per open stream; service and floor.
- SDK: REST PUT -> `on_change` in a few real `ConfigClient`s, next to a raw etcd put -> a
  raw aetcd watcher on the same etcd (both in this process, interleaved put by put).

Usage: .venv/bin/python bench/propagation.py [--quick] [--max-streams N] [--puts K]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _procfs import CpuSample, die_with_parent, rss_bytes
from _readers import ReaderPool, watch_request
from _sdk import SdkResult, measure_sdk, sdk_unavailable

from configsvc.embedded.binary import etcd_binary_version, find_etcd_binary, format_version
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.rlimits import raise_open_files_limit

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
ANALYSIS_MARKER = "<!-- analysis: kept when the benchmark rewrites this file -->"

HOST = "127.0.0.1"
NAMESPACE = "bench"
FANOUT_DOC = "fanout"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
KEEPALIVE = 15.0
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 10.0
FD_RESERVE = 64
"""File descriptors this process keeps for itself beyond the streams."""
SETTLE_SECONDS = 0.5
"""Pause after opening streams, before reading RSS and measuring."""
CLOSE_SETTLE_SECONDS = 1.5
"""Pause after closing streams (the service notices within its 1 s sweep)."""
IDLE_MAX_SECONDS = 20.0
"""The idle baseline is measured over the puts' wall time, at most this long (then scaled)."""
WARMUP_PUTS = 2
"""Uncounted puts at each level."""

TARGET_RATIO = 1.2
TARGET_SDK_FACTOR = 3.0
TARGET_CPU_US = 20.0
TARGET_KIB_PER_STREAM = 8.0
TARGET_N = 1000


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    puts: int
    pause: float
    """Seconds between one put being delivered everywhere and the next put."""
    batch: int
    """Streams opened at once."""
    sdk_clients: int
    sdk_puts: int
    delivery_timeout: float
    ready_timeout: float


FULL = Plan(
    levels=(100, 1_000, 10_000),
    puts=60,
    pause=0.02,
    batch=500,
    sdk_clients=4,
    sdk_puts=100,
    delivery_timeout=15.0,
    ready_timeout=60.0,
)
QUICK = Plan(
    levels=(50, 200),
    puts=8,
    pause=0.01,
    batch=100,
    sdk_clients=2,
    sdk_puts=8,
    delivery_timeout=10.0,
    ready_timeout=20.0,
)


# ---- the servers ------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server subprocess whose CPU and RSS are read from /proc."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn(name: str, script: str, args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(BENCH_DIR / script), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            preexec_fn=die_with_parent(),
        )


def start_service(etcd_url: str, workdir: Path, loop: str) -> ServerProcess:
    port = free_port()
    log_path = workdir / "service.log"
    args = [str(port), etcd_url, ADMIN_TOKEN, str(KEEPALIVE), loop]
    proc = spawn("service", "_service.py", args, log_path)
    server = ServerProcess("service", proc, port, log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        server.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the service did not become ready:\n{server.log_tail()}")


def start_floor(workdir: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    log_path = workdir / "floor.log"
    proc = spawn("floor", "_floor.py", [str(port)], log_path)
    server = ServerProcess("floor", proc, port, log_path)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if not line or line[0] != "ready":
        server.stop()
        raise RuntimeError(f"the floor server did not start:\n{server.log_tail()}")
    return server, line[1] if len(line) > 1 else "?"


# ---- what is published ------------------------------------------------------------------


def endpoints_document(seq: int) -> dict[str, Any]:
    """A realistic ModelEndpoints document (with a secret), different for every `seq`."""
    return {
        "kind": "ModelEndpoints",
        "message": f"propagation benchmark put {seq}",
        "spec": {
            "default": "local-34b",
            "fallbacks": ["hosted"],
            "endpoints": {
                "local-34b": {
                    "base_url": "http://127.0.0.1:1234/v1",
                    "model": "codebooga-34b",
                    "timeout": {"connect": 5, "read": 600 + seq, "write": 30, "pool": 5},
                    "retry": {"attempts": 3, "backoff_initial": 0.5, "backoff_max": 30},
                },
                "hosted": {
                    "base_url": "https://api.example.com/v1",
                    "model": "gpt-large",
                    "api_key": "sk-bench-0123456789abcdef0123456789abcdef",
                    "timeout": {"connect": 5, "read": 120, "write": 30, "pool": 5},
                },
            },
        },
    }


def seq_of(value: Any) -> int:
    """The `seq` of `endpoints_document(seq)`, read back from a bound ModelEndpoints."""
    return int(value.endpoints["local-34b"].timeout.read) - 600


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Target:
    """A server under test and how one change is published to it."""

    def __init__(self, name: str, server: ServerProcess, token: str | None) -> None:
        self.name = name
        self.server = server
        self.request = watch_request(HOST, server.port, f"/v1/watch?namespace={NAMESPACE}", token)

    async def publish(self, http: httpx.AsyncClient, seq: int) -> int:
        """Publish change `seq`; return the event id the readers will see."""
        raise NotImplementedError


class ServiceTarget(Target):
    def __init__(self, server: ServerProcess) -> None:
        super().__init__("service", server, ADMIN_TOKEN)
        self.url = f"http://{HOST}:{server.port}"
        self.sample_event_data: bytes | None = None
        """The data line of a put event as the service encodes it (the PUT's answer)."""

    async def publish(self, http: httpx.AsyncClient, seq: int) -> int:
        response = await http.put(
            f"{self.url}/v1/configs/{NAMESPACE}/{FANOUT_DOC}",
            json=endpoints_document(seq),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        response.raise_for_status()
        self.sample_event_data = response.content
        revision: int = response.json()["revision"]
        return revision


class FloorTarget(Target):
    def __init__(self, server: ServerProcess, event_data: bytes) -> None:
        super().__init__("floor", server, None)
        self.url = f"http://{HOST}:{server.port}/publish"
        self.event_data = event_data

    async def publish(self, http: httpx.AsyncClient, seq: int) -> int:
        event_id = seq + 1  # the floor's snapshot is id 0
        body = b"id: %d\nevent: put\ndata: %s\n\n" % (event_id, self.event_data)
        response = await http.post(self.url, content=body)
        response.raise_for_status()
        return event_id


# ---- measuring ----------------------------------------------------------------------------


@dataclass
class Level:
    """K puts to one server with `held` streams open (0: none, the fixed cost of a put)."""

    requested: int
    held: int
    latencies: list[float] = field(default_factory=list)
    """Seconds from the start of a put to its bytes at the last stream (or the put's answer
    when no stream is open)."""
    to_first: list[float] = field(default_factory=list)
    """Seconds from the start of a put to its bytes at the FIRST stream."""
    missed: int = 0
    puts: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    server_idle_cpu: float = 0.0
    """Server CPU seconds over the same wall time with the streams open and no puts."""
    reader_cpu_per_delivery: float = math.nan
    """This process's CPU (readers and REST client) per delivered event, over the window."""
    foreign_cpu: float = 0.0
    """CPU seconds used on the machine by other processes (other engineers' tests) while the
    puts ran."""
    interleaved: bool = False
    """Whether the puts alternated with the other server's (same window, same noise)."""
    rss: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def net_cpu_per_put(self) -> float:
        return max(0.0, self.server_cpu - self.server_idle_cpu) / max(1, self.puts)

    def cpu_per_delivery(self) -> float:
        return self.net_cpu_per_put / self.held if self.held else math.nan

    def marginal_cpu_per_delivery(self, zero: Level) -> float:
        """CPU per delivery beyond the fixed cost of a put measured with no streams."""
        if not self.held:
            return math.nan
        return max(0.0, self.net_cpu_per_put - zero.net_cpu_per_put) / self.held

    def other_load(self) -> float:
        """Average cores busy with other processes during the puts."""
        return self.foreign_cpu / self.wall if self.wall else math.nan


@dataclass
class TargetResult:
    name: str
    rss_base: int = 0
    zero: Level | None = None
    levels: list[Level] = field(default_factory=list)

    def bytes_per_stream(self, level: Level) -> float:
        return (level.rss - self.rss_base) / level.held if level.held else math.nan

    def bytes_per_added_stream(self, level: Level) -> float:
        """RSS growth per stream since the previous level: the slope, without the fixed
        growth (allocator arenas, buffers) that the first streams bring."""
        index = self.levels.index(level)
        previous = self.levels[index - 1] if index else None
        rss, held = (previous.rss, previous.held) if previous else (self.rss_base, 0)
        added = level.held - held
        return (level.rss - rss) / added if added > 0 else math.nan

    def at(self, n: int) -> Level | None:
        for level in self.levels:
            if level.requested == n:
                return level
        return None


@dataclass
class Lane:
    """One server under test: how to publish to it, its readers, its figures."""

    target: Target
    pool: ReaderPool
    result: TargetResult

    @property
    def pid(self) -> int:
        return self.target.server.pid


@dataclass
class Bench:
    plan: Plan
    http: httpx.AsyncClient
    watched_pids: list[int]
    """Processes whose CPU is ours (this one, the servers, etcd): the rest is foreign."""
    nofile: int
    seq: int = 0
    """Numbers every put, across servers, so each document and event id is new."""

    async def one_put(self, lane: Lane, level: Level | None, streams: bool) -> None:
        """Publish one change and note, in `level`, when it reached the streams."""
        self.seq += 1
        start = time.perf_counter()
        event_id = await lane.target.publish(self.http, self.seq)
        if not streams:
            if level is not None:
                level.latencies.append(time.perf_counter() - start)
            return
        tally = lane.pool.tally
        done = await tally.wait_delivered(event_id, self.plan.delivery_timeout)
        if level is None:
            return
        if done is None:
            level.missed += 1
            return
        level.latencies.append(done - start)
        level.to_first.append(tally.first_at.get(event_id, done) - start)

    async def run_puts(self, group: list[tuple[Lane, Level]], streams: bool) -> None:
        """K counted puts to each server of `group`, alternating between them, after warm-up
        puts; then the servers' idle CPU over the same wall time."""
        plan = self.plan
        for _ in range(WARMUP_PUTS):
            for lane, _level in group:
                await self.one_put(lane, None, streams)
                await asyncio.sleep(plan.pause)
        before = CpuSample.take(self.watched_pids)
        started = time.perf_counter()
        for _ in range(plan.puts):
            for lane, level in group:
                await self.one_put(lane, level, streams)
                await asyncio.sleep(plan.pause)
        wall = time.perf_counter() - started
        delta = CpuSample.take(self.watched_pids).since(before)
        deliveries = plan.puts * sum(level.held for _lane, level in group)
        reader = delta.per_pid[os.getpid()] / deliveries if deliveries else math.nan

        pids = [lane.pid for lane, _level in group]
        idle_window = min(wall, IDLE_MAX_SECONDS)
        before = CpuSample.take(pids)
        await asyncio.sleep(idle_window)
        idle = CpuSample.take(pids).since(before)
        for lane, level in group:
            level.puts = plan.puts
            level.wall = wall
            level.server_cpu = delta.per_pid[lane.pid]
            level.server_idle_cpu = idle.per_pid[lane.pid] * wall / idle_window
            level.reader_cpu_per_delivery = reader
            level.foreign_cpu = delta.foreign
            level.interleaved = len(group) > 1

    async def open_streams(self, lane: Lane, n: int) -> Level:
        name = lane.target.name
        log(f"  {name}: opening streams up to {n:,}")
        held = await lane.pool.grow(n, self.plan.batch, self.plan.ready_timeout)
        lane.target.server.check_alive()
        level = Level(n, held, errors=list(dict.fromkeys(lane.pool.errors)))
        if held < n:
            log(f"  {name}: held {held:,} of {n:,}: {'; '.join(level.errors) or '?'}")
        return level

    async def run(self, lanes: list[Lane]) -> None:
        """Every level for every lane; lanes interleaved when both sets of streams fit."""
        plan = self.plan
        log("  puts with no stream open")
        zero = [(lane, Level(0, 0)) for lane in lanes]
        await self.run_puts(zero, streams=False)
        await asyncio.sleep(SETTLE_SECONDS)
        for lane, level in zero:
            lane.result.zero = level
            lane.result.rss_base = rss_bytes(lane.pid)
        for n in plan.levels:
            together = n * len(lanes) + FD_RESERVE <= self.nofile
            groups = [lanes] if together else [[lane] for lane in lanes]
            complete = True
            for group in groups:
                measured: list[tuple[Lane, Level]] = []
                for lane in group:
                    level = await self.open_streams(lane, n)
                    complete = complete and level.held == n
                    if level.held:
                        measured.append((lane, level))
                if not measured:
                    continue
                await asyncio.sleep(SETTLE_SECONDS)
                for lane, level in measured:
                    level.rss = rss_bytes(lane.pid)
                    lane.result.levels.append(level)
                names = " and ".join(lane.target.name for lane, _level in measured)
                log(f"  {names}: {n:,} streams each; {plan.puts} puts each")
                await self.run_puts(measured, streams=True)
                if not together:
                    for lane in group:
                        lane.pool.close()
                    await asyncio.sleep(CLOSE_SETTLE_SECONDS)
            if not together or not complete:
                break


async def run_fanout(
    plan: Plan, service: ServiceTarget, floor_server: ServerProcess, etcd_pid: int, nofile: int
) -> tuple[TargetResult, TargetResult]:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with httpx.AsyncClient(timeout=plan.delivery_timeout, limits=limits) as http:
        pids = [os.getpid(), service.server.pid, floor_server.pid, etcd_pid]
        bench = Bench(plan, http, pids, nofile)
        await service.publish(http, 0)  # the document exists; its event's bytes are known
        data = service.sample_event_data or compact(endpoints_document(0))
        floor = FloorTarget(floor_server, compact(json.loads(data)))
        lanes = [
            Lane(t, ReaderPool(HOST, t.server.port, t.request), TargetResult(t.name))
            for t in (service, floor)
        ]
        log("fan-out: service (REST PUT -> etcd -> watch -> SSE) and floor (POST -> the same "
            "bytes to every stream), alternating put by put")  # fmt: skip
        try:
            await bench.run(lanes)
        finally:
            for lane in lanes:
                lane.pool.close()
    return lanes[0].result, lanes[1].result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- reporting ----------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.1f}"


def kib(n_bytes: float) -> str:
    return "-" if math.isnan(n_bytes) else f"{n_bytes / 1024:.2f}"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b <= 0 else f"{a / b:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table that also reads well as plain text."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]  # fmt: skip

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return [line(headers), sep, *(line(r) for r in rows)]


FANOUT_HEADERS = ("N", "held", "puts", "service p50", "p95", "floor p50", "p95", "ratio p50",
                  "ratio p95", "missed")  # fmt: skip
COST_HEADERS = ("N", "svc µs/dlv", "floor µs/dlv", "svc marginal", "floor marginal",
                "svc KiB/stream", "svc slope", "floor KiB/stream", "reader µs/dlv",
                "other load (cores)")  # fmt: skip
SPLIT_HEADERS = ("N", "service: put -> first stream", "first -> last", "floor: put -> first",
                 "first -> last")  # fmt: skip
FIXED_HEADERS = ("a put with no stream open", "p50 ms", "p95 ms", "server CPU µs/put")
SDK_HEADERS = ("path", "samples", "p50 ms", "p95 ms", "p95 vs raw")


@dataclass
class Report:
    plan: Plan
    command: str
    machine: dict[str, str]
    service: TargetResult
    floor: TargetResult
    sdk: SdkResult | None
    sdk_skipped: str | None
    started: dt.datetime
    duration: float
    verdicts: list[tuple[str, str, bool | None]] = field(default_factory=list)

    def fanout_rows(self) -> list[list[str]]:
        rows = []
        for level in self.service.levels:
            floor = self.floor.at(level.requested)
            s50, s95 = quantile(level.latencies, 0.5), quantile(level.latencies, 0.95)
            f50 = quantile(floor.latencies, 0.5) if floor else math.nan
            f95 = quantile(floor.latencies, 0.95) if floor else math.nan
            held = f"{level.held:,}" + (f"/{floor.held:,}" if floor and floor.held != level.held
                                        else "")  # fmt: skip
            missed = level.missed + (floor.missed if floor else 0)
            mode = "alternating" if level.interleaved else "in turn"
            rows.append([f"{level.requested:,}", held, mode, ms(s50), ms(s95), ms(f50), ms(f95),
                         ratio(s50, f50), ratio(s95, f95), str(missed)])  # fmt: skip
        return rows

    def split_rows(self) -> list[list[str]]:
        rows = []
        for level in self.service.levels:
            floor = self.floor.at(level.requested)
            cells = [f"{level.requested:,}"]
            for lv in (level, floor):
                if lv is None:
                    cells += ["-", "-"]
                    continue
                spreads = [last - first for last, first in zip(lv.latencies, lv.to_first,
                                                              strict=True)]  # fmt: skip
                cells += [ms(quantile(lv.to_first, 0.5)), ms(quantile(spreads, 0.5))]
            rows.append(cells)
        return rows

    def cost_rows(self) -> list[list[str]]:
        rows = []
        zs, zf = self.service.zero, self.floor.zero
        assert zs is not None and zf is not None
        for level in self.service.levels:
            floor = self.floor.at(level.requested)
            nan = math.nan
            rows.append([
                f"{level.requested:,}",
                us(level.cpu_per_delivery()),
                us(floor.cpu_per_delivery() if floor else nan),
                us(level.marginal_cpu_per_delivery(zs)),
                us(floor.marginal_cpu_per_delivery(zf) if floor else nan),
                kib(self.service.bytes_per_stream(level)),
                kib(self.service.bytes_per_added_stream(level)),
                kib(self.floor.bytes_per_stream(floor) if floor else nan),
                us(level.reader_cpu_per_delivery),
                f"{level.other_load():.2f}" + (
                    f"/{floor.other_load():.2f}" if floor and not level.interleaved else ""),
            ])  # fmt: skip
        return rows

    def fixed_rows(self) -> list[list[str]]:
        zs, zf = self.service.zero, self.floor.zero
        assert zs is not None and zf is not None
        return [
            ["service (REST PUT, etcd txn)", ms(quantile(zs.latencies, 0.5)),
             ms(quantile(zs.latencies, 0.95)), us(zs.net_cpu_per_put)],
            ["floor (POST /publish)", ms(quantile(zf.latencies, 0.5)),
             ms(quantile(zf.latencies, 0.95)), us(zf.net_cpu_per_put)],
        ]  # fmt: skip

    def sdk_rows(self) -> list[list[str]]:
        sdk = self.sdk
        if sdk is None:
            return []
        return [
            ["raw etcd put -> aetcd watcher", str(len(sdk.raw_etcd)),
             ms(quantile(sdk.raw_etcd, 0.5)), ms(quantile(sdk.raw_etcd, 0.95)), "1.00x"],
            [f"REST PUT -> on_change (each of {sdk.clients} clients)", str(len(sdk.sdk_each)),
             ms(quantile(sdk.sdk_each, 0.5)), ms(quantile(sdk.sdk_each, 0.95)),
             ratio(quantile(sdk.sdk_each, 0.95), quantile(sdk.raw_etcd, 0.95))],
            [f"REST PUT -> on_change (last of {sdk.clients} clients)", str(len(sdk.sdk_last)),
             ms(quantile(sdk.sdk_last, 0.5)), ms(quantile(sdk.sdk_last, 0.95)),
             ratio(quantile(sdk.sdk_last, 0.95), quantile(sdk.raw_etcd, 0.95))],
            ["(REST PUT answered, for reference)", str(len(sdk.put_answered)),
             ms(quantile(sdk.put_answered, 0.5)), ms(quantile(sdk.put_answered, 0.95)), ""],
        ]  # fmt: skip

    def judge(self) -> None:
        v = self.verdicts
        top = self.service.levels[-1] if self.service.levels else None
        at_n = self.service.at(TARGET_N)
        floor_n = self.floor.at(TARGET_N)
        if at_n and floor_n:
            r50 = quantile(at_n.latencies, 0.5) / quantile(floor_n.latencies, 0.5)
            r95 = quantile(at_n.latencies, 0.95) / quantile(floor_n.latencies, 0.95)
            ok = r50 <= TARGET_RATIO and r95 <= TARGET_RATIO
            v.append((f"fan-out within {TARGET_RATIO}x the floor at N = {TARGET_N:,}",
                      f"p50 {r50:.2f}x, p95 {r95:.2f}x", ok))  # fmt: skip
        else:
            v.append((f"fan-out within {TARGET_RATIO}x the floor at N = {TARGET_N:,}",
                      f"not measured (levels {self.plan.levels})", None))  # fmt: skip
        if self.sdk and self.sdk.sdk_each and self.sdk.raw_etcd:
            raw95 = quantile(self.sdk.raw_etcd, 0.95)
            each = quantile(self.sdk.sdk_each, 0.95) / raw95
            last = quantile(self.sdk.sdk_last, 0.95) / raw95
            v.append((f"SDK p95 within {TARGET_SDK_FACTOR:g}x the raw etcd watch p95",
                      f"{each:.2f}x per client, {last:.2f}x at the last client",
                      each <= TARGET_SDK_FACTOR))  # fmt: skip
        else:
            v.append((f"SDK p95 within {TARGET_SDK_FACTOR:g}x the raw etcd watch p95",
                      f"not measured: {self.sdk_skipped or 'no samples'}", None))  # fmt: skip
        judged = [(f"N = {TARGET_N:,}", at_n)]
        if top is not None and top is not at_n:
            judged.append((f"N = {top.held:,}", top))
        for name, level in judged:
            if level is None:
                continue
            cpu = level.cpu_per_delivery() * 1e6
            v.append((f"<= {TARGET_CPU_US:g} µs CPU per delivery ({name})",
                      f"{cpu:.1f} µs", cpu <= TARGET_CPU_US))  # fmt: skip
            mem = self.service.bytes_per_stream(level) / 1024
            v.append((f"<= {TARGET_KIB_PER_STREAM:g} KiB per open stream ({name})",
                      f"{mem:.2f} KiB", mem <= TARGET_KIB_PER_STREAM))  # fmt: skip

    def render_text(self) -> str:
        out = [
            "",
            f"configsvc propagation benchmark - {self.machine['cores']} cores, "
            f"{self.plan.puts} puts per level, {self.duration:.0f} s",
            "",
            "Fan-out: start of a put -> its bytes at the LAST of N streams (ms)",
            *table(FANOUT_HEADERS, self.fanout_rows()),
            "",
            "Where the time goes (p50 ms): the path to the first stream, then the spread",
            *table(SPLIT_HEADERS, self.split_rows()),
            "",
            "Server cost (CPU net of idle, per delivered event; RSS per open stream)",
            *table(COST_HEADERS, self.cost_rows()),
            "",
            "A put with no stream open (the fixed cost that N deliveries share)",
            *table(FIXED_HEADERS, self.fixed_rows()),
            "",
        ]
        if self.sdk is not None:
            out += ["SDK propagation (ms)",
                    *table(SDK_HEADERS, self.sdk_rows()),
                    ""]  # fmt: skip
        else:
            out += [f"SDK propagation: not measured - {self.sdk_skipped}", ""]
        out.append("Targets")
        for name, value, ok in self.verdicts:
            mark = "n/a" if ok is None else ("MET" if ok else "NOT MET")
            out.append(f"  [{mark:>7}] {name}: {value}")
        return "\n".join(out)

    def render_markdown(self, analysis: str) -> str:
        m = self.machine
        out = [
            "# Propagation benchmark results",
            "",
            f"Measured {self.started:%Y-%m-%d %H:%M} UTC with",
            "",
            "```",
            self.command,
            "```",
            "",
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']}, Linux {m['kernel']}; "
            f"Python {m['python']}; etcd {m['etcd']} (default raft timers); "
            f"service: uvicorn {m['uvicorn']} + {m['service_loop']}, httptools "
            f"{m['httptools']}; floor and readers on {m['floor_loop']}. Open-files limit "
            f"{m['nofile']}. Run time {self.duration:.0f} s.",
            "",
            "The service, the floor server and etcd run in their own processes; the readers, "
            "the REST client and the SDK clients in the benchmark's process, on the same two "
            "cores. At each N both servers hold N streams and the puts alternate between "
            "them (service, floor, service, ...), so that both see the same background load; "
            "where both sets of streams do not fit in this process's open-files limit (the "
            "largest N), the two are measured in turn (*puts* column). Other engineers may "
            "run tests on this machine at the same time: *other load* gives the cores they "
            "used while the puts ran (/proc/stat busy time minus this benchmark's processes, "
            "etcd included). Prefer the ratios, measured under the same load, to absolute "
            "times.",
            "",
            "## Targets (issue 3)",
            "",
            "| target | measured | verdict |",
            "|---|---|---|",
        ]
        for name, value, ok in self.verdicts:
            verdict = "not measured" if ok is None else ("**met**" if ok else "**NOT met**")
            out.append(f"| {name} | {value} | {verdict} |")
        out += [
            "",
            "## Fan-out: start of a put -> its bytes at the LAST of N streams (ms)",
            "",
            f"{self.plan.puts} sequential puts per level (after {WARMUP_PUTS} uncounted), "
            f"{self.plan.pause * 1e3:.0f} ms apart. Service: REST PUT (httpx) of a "
            f"~{len(json.dumps(endpoints_document(0)))}-byte ModelEndpoints document -> etcd "
            "-> the service's watch -> SSE. Floor: POST of the same event bytes to "
            "`bench/_floor.py`, which writes them to every stream. *held*: streams open "
            "(service/floor when they differ); *missed*: puts not delivered to every stream "
            f"within {self.plan.delivery_timeout:g} s; *puts*: alternating between the two "
            "servers, or one server after the other.",
            "",
            *table(FANOUT_HEADERS, self.fanout_rows()),
            "",
            "Where the time goes (p50, ms): from the start of the put to the change's bytes "
            "at the FIRST stream (REST, etcd and watch for the service; the POST for the "
            "floor), then from the first stream to the last (the fan-out itself, readers "
            "included).",
            "",
            *table(SPLIT_HEADERS, self.split_rows()),
            "",
            "## Server cost",
            "",
            "CPU: utime+stime of the server process during the K puts minus its CPU over "
            f"the same wall time with the streams open and no puts (measured over at most "
            f"{IDLE_MAX_SECONDS:g} s and scaled), divided by K x N deliveries. "
            "*Marginal*: the same after also subtracting the CPU of a put with "
            "no stream open (REST handling, etcd transaction, encoding; table below), i.e. "
            "the cost of one more stream. Memory: (VmRSS with N streams - VmRSS before "
            "the first stream) / N; *slope*: (VmRSS - VmRSS at the previous N) / (streams "
            "added), which leaves out the fixed growth the first streams bring. *Reader*: "
            "this process's CPU per delivery (lean readers plus the REST client), for "
            "context. Resolution of CPU times: 10 ms.",
            "",
            *table(COST_HEADERS, self.cost_rows()),
            "",
            *table(FIXED_HEADERS, self.fixed_rows()),
            "",
            "## SDK propagation",
            "",
        ]
        if self.sdk is not None:
            out += [
                f"{self.sdk.clients} `ConfigClient`s (`async with`, on this process's event "
                "loop) bound to one ModelEndpoints document; REST PUT -> `on_change`, next to "
                "a raw etcd put -> a raw aetcd watcher on the same etcd, interleaved put by "
                f"put ({len(self.sdk.raw_etcd)} of each). Undelivered: {self.sdk.missed}.",
                "",
                *table(SDK_HEADERS, self.sdk_rows()),
                "",
            ]
        else:
            out += [f"Not measured: {self.sdk_skipped}.", ""]
        errors = sorted({e for r in (self.service, self.floor) for lv in r.levels
                         for e in lv.errors})  # fmt: skip
        if errors:
            out += ["Errors while opening streams: " + "; ".join(errors), ""]
        out += [ANALYSIS_MARKER, analysis.rstrip(), ""]
        return "\n".join(out)


def machine_info(etcd_version: str, floor_loop: str, service_loop: str) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    import resource

    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "etcd": etcd_version,
        "uvicorn": version("uvicorn"),
        "httptools": version("httptools"),
        "service_loop": "asyncio" if service_loop == "asyncio" or (
            service_loop == "auto" and version("uvloop") == "absent")
        else "uvloop " + version("uvloop"),
        "floor_loop": floor_loop,
        "nofile": str(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
    }  # fmt: skip


def existing_analysis(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError:
        return ""
    _, found, after = text.partition(ANALYSIS_MARKER)
    return after.strip("\n") if found else ""


# ---- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N and few puts (~30 s)")
    parser.add_argument("--max-streams", type=int, default=None, help="cap the largest N")
    parser.add_argument("--puts", type=int, default=None, help="counted puts per level (K)")
    parser.add_argument("--sdk-clients", type=int, default=None)
    parser.add_argument(
        "--service-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="uvicorn's event loop for the service (auto: uvloop when installed, as deployed)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"write the figures here (default: {RESULTS_PATH.relative_to(REPO)} for a "
        "full run, nowhere for --quick)",
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace, nofile: int) -> Plan:
    plan = QUICK if args.quick else FULL
    cap = nofile - FD_RESERVE
    if args.max_streams is not None:
        cap = min(cap, args.max_streams)
    levels = tuple(sorted({min(n, cap) for n in plan.levels if n > 0}))
    return Plan(
        levels=levels,
        puts=args.puts or plan.puts,
        pause=plan.pause,
        batch=plan.batch,
        sdk_clients=args.sdk_clients or plan.sdk_clients,
        sdk_puts=args.puts or plan.sdk_puts,
        delivery_timeout=plan.delivery_timeout,
        ready_timeout=plan.ready_timeout,
    )


def run_async(main: Callable[[], Awaitable[Any]], *, uvloop_ok: bool) -> Any:
    async def wrapper() -> Any:
        return await main()

    if uvloop_ok:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(wrapper())
    return asyncio.run(wrapper())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_open_files_limit()
    plan = make_plan(args, nofile)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python bench/propagation.py", *given])
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="configsvc-bench-"))
    binary = find_etcd_binary()
    etcd = EtcdProcess(binary=binary, data_dir=workdir / "etcd", log_path=workdir / "etcd.log")
    servers: list[ServerProcess] = []
    try:
        log(f"etcd {binary}")
        etcd.start()
        assert etcd.pid is not None
        service_server = start_service(etcd.client_url, workdir, args.service_loop)
        servers.append(service_server)
        floor_server, floor_loop = start_floor(workdir)
        servers.append(floor_server)
        log(f"service pid {service_server.pid}, floor pid {floor_server.pid}; levels "
            f"{', '.join(f'{n:,}' for n in plan.levels)}; {plan.puts} puts each")  # fmt: skip
        service = ServiceTarget(service_server)
        service_result, floor_result = run_async(
            lambda: run_fanout(plan, service, floor_server, etcd.pid or 0, nofile), uvloop_ok=True
        )
        sdk: SdkResult | None = None
        skipped = sdk_unavailable()
        if skipped is None:
            log(f"SDK: {plan.sdk_clients} ConfigClients vs a raw aetcd watcher")
            try:
                sdk = run_async(
                    lambda: measure_sdk(
                        url=service.url,
                        token=ADMIN_TOKEN,
                        etcd_host=HOST,
                        etcd_port=etcd.client_port,
                        namespace=NAMESPACE,
                        document=endpoints_document,
                        read_seq=seq_of,
                        clients=plan.sdk_clients,
                        puts=plan.sdk_puts,
                        pause=plan.pause,
                        within=plan.delivery_timeout,
                        cache_root=workdir / "sdk-cache",
                    ),
                    uvloop_ok=False,
                )
            except Exception as exc:  # the SDK is being written concurrently
                skipped = f"the SDK run failed: {type(exc).__name__}: {exc}"
                log(skipped)
        report = Report(
            plan=plan,
            command=command,
            machine=machine_info(
                format_version(etcd_binary_version(binary)), floor_loop, args.service_loop
            ),
            service=service_result,
            floor=floor_result,
            sdk=sdk,
            sdk_skipped=skipped,
            started=started,
            duration=time.monotonic() - t0,
        )
        report.judge()
        print(report.render_text(), flush=True)
        results = args.results if args.results is not None else (
            None if args.quick else RESULTS_PATH)  # fmt: skip
        if results is not None:
            results.write_text(report.render_markdown(existing_analysis(results)))
            log(f"wrote {results}")
        return 0
    finally:
        for server in reversed(servers):
            server.stop()
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
