"""The push with a staged rollout running: what a rollout adds to the service's CPU.

Run: .venv/bin/python bench/rollout_push.py [--streams N] [--puts K] [--transitions T]

N lean readers (`_readers.py`), each naming itself as an SDK instance, watch one namespace
of the service (a subprocess: its CPU is read from /proc). Measured in one run, each phase's
CPU minus the service's idle CPU over the same wall time:

- **puts, no rollout**: K puts of one document, each delivered to all N streams;
- **puts, rollout running**: the same, while another document of the namespace is under a
  running rollout (the cost a rollout adds to every other event);
- **transitions**: T rollouts started at 50 % and aborted: each start and each abort is
  one move that every stream resolves by its identity (a hash) and about N/2 streams get.

Figures are CPU per delivered event (per stream for transitions) and their ratio to the
plain put in the same run. Not a timed test: run it by hand, one run, read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _procfs import cpu_seconds  # noqa: E402
from _readers import LeanReader, Tally  # noqa: E402
from propagation import ADMIN_TOKEN, HOST, start_service  # noqa: E402

from configsvc.embedded.binary import find_etcd_binary  # noqa: E402
from configsvc.embedded.process import EtcdProcess  # noqa: E402
from configsvc.rlimits import raise_open_files_limit  # noqa: E402

NAMESPACE = "bench"
BATCH = 200
DELIVERY_TIMEOUT = 30.0
PAUSE = 0.02
"""Seconds between puts, so that each is measured alone."""


def limits(rps: float) -> dict[str, object]:
    return {"limits": {"chat": {"requests_per_second": rps, "burst": 10}}}


def request(port: int, instance: str) -> bytes:
    lines = [
        f"GET /v1/watch?namespace={NAMESPACE} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Accept: text/event-stream",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        f"X-Configsvc-Instance: {instance}",
        'X-Configsvc-Labels: {"region":"eu"}',
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chosen(rollout_id: str, instance: str, percent: float) -> bool:
    digest = hashlib.sha256(f"{rollout_id}/{instance}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < round(percent * 100)


class Bench:
    def __init__(self, port: int, pid: int, streams: int) -> None:
        self.port = port
        self.pid = pid
        self.streams = streams
        self.tally = Tally()
        self.readers: dict[str, LeanReader] = {}
        self.api = httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        names = [f"bench-{n:05d}" for n in range(self.streams)]
        for start in range(0, len(names), BATCH):
            batch = names[start : start + BATCH]
            made = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda n=name: LeanReader(request(self.port, n), self.tally),
                        HOST,
                        self.port,
                    )
                    for name in batch
                )
            )
            for name, (_transport, reader) in zip(batch, made, strict=True):
                self.readers[name] = reader
            if not await self.tally.wait_ready(len(self.readers), DELIVERY_TIMEOUT):
                raise RuntimeError("streams did not get their snapshots")
        self.tally.expected = len(self.readers)

    async def put(self, name: str, rps: float) -> int:
        answer = await self.api.put(
            f"/v1/configs/{NAMESPACE}/{name}", json={"kind": "RateLimits", "spec": limits(rps)}
        )
        answer.raise_for_status()
        revision: int = answer.json()["revision"]
        return revision

    async def measured(self, job: Callable[[], Awaitable[None]]) -> tuple[float, float]:
        """(CPU seconds of the service, wall seconds) of `job`."""
        cpu, wall = cpu_seconds(self.pid), time.perf_counter()
        await job()
        return cpu_seconds(self.pid) - cpu, time.perf_counter() - wall

    async def idle(self, seconds: float) -> float:
        cpu = cpu_seconds(self.pid)
        await asyncio.sleep(seconds)
        return cpu_seconds(self.pid) - cpu

    async def puts(self, count: int, base: float) -> tuple[float, float]:
        async def job() -> None:
            for n in range(count):
                revision = await self.put("other", base + n + 1)
                if await self.tally.wait_delivered(revision, DELIVERY_TIMEOUT) is None:
                    raise RuntimeError(f"put {revision} not delivered to every stream")
                await asyncio.sleep(PAUSE)

        return await self.measured(job)

    async def transitions(self, count: int) -> tuple[float, float, int]:
        """Start at 50 % and abort, `count` times; CPU, wall, streams moved in all."""
        moved = 0

        async def wait_moved(rollout: dict[str, object], percent: float) -> int:
            ids = [n for n in self.readers if chosen(str(rollout["id"]), n, percent)]
            revision = int(str(rollout["revision"]))
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while any(self.readers[n].last_id < revision for n in ids):
                if time.monotonic() > deadline:
                    raise RuntimeError("a move did not reach its streams")
                await asyncio.sleep(0.001)
            return len(ids)

        async def job() -> None:
            nonlocal moved
            for n in range(count):
                body = {
                    "kind": "RateLimits",
                    "spec": limits(1000 + n),
                    "steps": [50, 100],
                    "step_seconds": 3600,
                }
                started = await self.api.post(f"/v1/configs/{NAMESPACE}/target/rollouts", json=body)
                started.raise_for_status()
                moved += await wait_moved(started.json(), 50)
                aborted = await self.api.post(
                    f"/v1/configs/{NAMESPACE}/target/rollouts/current/abort"
                )
                aborted.raise_for_status()
                moved += await wait_moved({**aborted.json(), "id": started.json()["id"]}, 50)
                await asyncio.sleep(PAUSE)

        cpu, wall = await self.measured(job)
        return cpu, wall, moved

    async def start_rollout(self) -> None:
        body = {"kind": "RateLimits", "spec": limits(7), "steps": [50, 100], "step_seconds": 3600}
        answer = await self.api.post(f"/v1/configs/{NAMESPACE}/target/rollouts", json=body)
        answer.raise_for_status()

    async def abort_rollout(self) -> None:
        answer = await self.api.post(f"/v1/configs/{NAMESPACE}/target/rollouts/current/abort")
        answer.raise_for_status()


async def run(args: argparse.Namespace, port: int, pid: int) -> list[str]:
    bench = Bench(port, pid, args.streams)
    await bench.put("other", 0.5)  # the puts measured write 1, 2, …: each a new version
    await bench.put("target", 0.5)
    await bench.open()
    rounds: dict[str, list[float]] = {"plain": [], "running": [], "move": []}
    for round_ in range(args.rounds):
        cpu, wall = await bench.puts(args.puts, 100 * round_)
        idle = await bench.idle(wall)
        rounds["plain"].append((cpu - idle) / (args.puts * args.streams))
        await bench.start_rollout()
        cpu, wall = await bench.puts(args.puts, 100 * round_ + 50)
        idle = await bench.idle(wall)
        rounds["running"].append((cpu - idle) / (args.puts * args.streams))
        await bench.abort_rollout()
        cpu, wall, _moved = await bench.transitions(args.transitions)
        idle = await bench.idle(wall)
        rounds["move"].append((cpu - idle) / (2 * args.transitions * args.streams))
    await bench.api.aclose()
    plain = statistics.median(rounds["plain"])
    lines = [
        f"streams: {args.streams}, puts per phase: {args.puts}, transitions: "
        f"{2 * args.transitions} per round, rounds: {args.rounds} (medians)",
        "",
        "| phase | service CPU per stream per event | ratio to a plain put |",
        "|---|---|---|",
    ]
    for name, label in (
        ("plain", "put, no rollout"),
        ("running", "put, a rollout running on another document"),
        ("move", "rollout transition (start at 50 % / abort), per stream resolved"),
    ):
        value = statistics.median(rounds[name])
        lines.append(f"| {label} | {value * 1e6:.1f} µs | {value / plain:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--puts", type=int, default=20)
    parser.add_argument("--transitions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        etcd = EtcdProcess(
            binary=find_etcd_binary(None), data_dir=work / "etcd", log_path=work / "etcd.log"
        )
        etcd.start()
        service = start_service(etcd.client_url, work, "auto")
        try:
            lines = asyncio.run(run(args, service.port, service.pid))
        finally:
            service.stop()
            etcd.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
