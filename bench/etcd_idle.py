"""What one etcd round trip costs when the client calls again after a pause.

Run: .venv/bin/python bench/etcd_idle.py [--calls K]

The propagation benchmark puts 20 ms apart, so every etcd call there starts from idle. This
measures, in one run on one etcd (default raft timers): a linearizable range read, a
serializable one, and a one-key put transaction, through the service's own client
(`EtcdKV`, gRPC) back to back and after pauses of 1, 5 and 20 ms; next to a round trip
to a plain Python echo process over loopback TCP, which shows what waking an idle process
costs on this machine without etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess
from configsvc.store.etcd_client import EtcdKV, put_op

PAUSES = (0.0, 0.001, 0.005, 0.020)
ECHO_SERVER = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while data := conn.recv(64):
    conn.sendall(data)
"""


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_calls(
    call: Callable[[], Awaitable[object]], pause: float, calls: int
) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
        if pause:
            await asyncio.sleep(pause)
    return samples


async def etcd_rows(url: str, calls: int) -> list[tuple[str, float, list[float]]]:
    kv = EtcdKV([url], timeout=5)
    await kv.range(b"warm-up")
    value = b"v" * 500
    paths: dict[str, Callable[[], Awaitable[object]]] = {
        "etcd range (linearizable)": lambda: kv.range(b"k"),
        "etcd range (serializable)": lambda: kv.txn([], [_serializable_range(b"k")]),
        "etcd put (txn, one key)": lambda: kv.txn([], [put_op(b"k", value)]),
    }
    rows = []
    for name, call in paths.items():
        for pause in PAUSES:
            rows.append((name, pause, await timed_calls(call, pause, calls)))
    await kv.close()
    return rows


def _serializable_range(key: bytes) -> object:
    from aetcd import rpc

    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key, serializable=True))


def echo_rows(calls: int) -> list[tuple[str, float, list[float]]]:
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rows = []
    try:
        for pause in PAUSES:
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                conn.sendall(b"x")
                conn.recv(64)
                samples.append(time.perf_counter() - started)
                if pause:
                    time.sleep(pause)
            rows.append(("loopback echo (Python process)", pause, samples))
    finally:
        conn.close()
        server.wait(5)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="configsvc-etcd-idle-"))
    etcd = EtcdProcess(binary=find_etcd_binary(), data_dir=workdir / "etcd")
    etcd.start()
    try:
        rows = asyncio.run(etcd_rows(etcd.client_url, args.calls))
    finally:
        etcd.stop()
    rows += echo_rows(args.calls)
    print("| round trip | pause before each call | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|")
    for name, pause, samples in rows:
        print(
            f"| {name} | {pause * 1000:g} ms | {quantile(samples, 0.5) * 1000:.2f} "
            f"| {quantile(samples, 0.95) * 1000:.2f} |"
        )


if __name__ == "__main__":
    main()
