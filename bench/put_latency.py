"""Write latency and start-up time of the service, next to raw etcd in the same run.

Run: .venv/bin/python bench/put_latency.py [--puts K] [--starts S]

- PUT: a REST PUT of a changed ModelEndpoints document (validation, one read and one
  compare-and-set transaction in etcd, history), against a raw aetcd put of the same bytes
  on the same etcd, interleaved one for one so that both see the same background load.
- Start-up: `configsvc serve` on the embedded default (it starts its own etcd), from spawn
  to `/readyz` answering 200, on a fresh data dir and then restarted on the same one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aetcd
import httpx
from propagation import ADMIN_TOKEN, HOST, quantile, start_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess, free_port

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0


def document(seq: int) -> dict[str, Any]:
    return {
        "kind": "ModelEndpoints",
        "message": f"bench {seq}",
        "spec": {
            "default": "local",
            "endpoints": {
                "local": {
                    "base_url": "http://127.0.0.1:1234/v1",
                    "model": f"model-{seq}",
                    "api_key": "sk-bench",
                    "timeout": {"read": 600},
                }
            },
        },
    }


async def measure_puts(service_url: str, etcd: EtcdProcess, puts: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"REST PUT (service)": [], "raw etcd put (aetcd)": []}
    raw = aetcd.Client(host=HOST, port=etcd.client_port)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=service_url, headers=headers) as client:
        for seq in range(puts + 10):
            body = document(seq)
            started = time.perf_counter()
            response = await client.put("/v1/configs/bench/models", json=body)
            rest = time.perf_counter() - started
            response.raise_for_status()
            value = response.content
            started = time.perf_counter()
            await raw.put(b"/bench-raw/models", value)
            direct = time.perf_counter() - started
            if seq >= 10:  # warm-up
                samples["REST PUT (service)"].append(rest)
                samples["raw etcd put (aetcd)"].append(direct)
    await raw.close()
    return samples


def time_serve(data_dir: Path) -> float:
    """Seconds from spawning `configsvc serve` to `/readyz` answering 200; then SIGTERM."""
    port = free_port()
    env = {**os.environ, "CONFIGSVC_DATA_DIR": str(data_dir), "CONFIGSVC_PORT": str(port)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "configsvc"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise RuntimeError("configsvc serve did not become ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def row(name: str, values: list[float], baseline: list[float]) -> str:
    p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
    ratio50 = p50 / quantile(baseline, 0.5)
    ratio99 = p99 / quantile(baseline, 0.99)
    return (
        f"| {name} | {len(values)} | {p50 * 1000:.2f} | {p99 * 1000:.2f} "
        f"| {ratio50:.1f}x | {ratio99:.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=500)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="configsvc-bench-"))
    etcd = EtcdProcess(binary=find_etcd_binary(), data_dir=workdir / "etcd")
    etcd.start()
    service = start_service(etcd.client_url, workdir, "auto")
    try:
        samples = asyncio.run(measure_puts(f"http://{HOST}:{service.port}", etcd, args.puts))
    finally:
        service.stop()
        etcd.stop()
    baseline = samples["raw etcd put (aetcd)"]
    print("| path | samples | p50 ms | p99 ms | p50 vs raw | p99 vs raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in samples.items():
        print(row(name, values, baseline))

    fresh: list[float] = []
    restarts: list[float] = []
    for _ in range(args.starts):
        data_dir = Path(tempfile.mkdtemp(prefix="configsvc-serve-"))
        fresh.append(time_serve(data_dir))
        restarts.append(time_serve(data_dir))
    print()
    print("| configsvc serve, embedded etcd | runs | min s | median s | max s |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("fresh data dir", fresh), ("restart on the same data dir", restarts)):
        values.sort()
        print(
            f"| {name} | {len(values)} | {values[0]:.2f} | {quantile(values, 0.5):.2f} "
            f"| {values[-1]:.2f} |"
        )


if __name__ == "__main__":
    main()
