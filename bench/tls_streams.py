"""What HTTPS costs a watch stream: memory per stream, CPU per delivery, fan-out latency.

The same `configsvc serve` (uvicorn's default loop: uvloop) runs twice on one etcd, once in
plain HTTP and once with `--tls-cert/--tls-key`; N lean readers (`_readers.LeanReader`,
over TLS for the second) hold streams, K puts are fanned out, and the figures of HTTPS are
given as ratios to plain HTTP's, measured in the same run.

Run: .venv/bin/python bench/tls_streams.py [--streams N] [--puts K]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _procfs import cpu_seconds, rss_bytes
from _readers import LeanReader, Tally, watch_request
from tls.certs import Authority

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.rlimits import raise_open_files_limit

TOKEN = "bench-admin-token-0123456789"
HOST = "127.0.0.1"
BATCH = 250
READY_WITHIN = 60.0
DELIVERY_WITHIN = 30.0
SETTLE_SECONDS = 1.0
PUT_GAP_SECONDS = 0.05


@dataclass
class Figures:
    kib_per_stream: float
    cpu_us_per_delivery: float
    p50_ms: float
    p95_ms: float


def start_service(etcd_url: str, port: int, data_dir: Path, tls: tuple[Path, Path] | None):
    args = [
        str(Path(sys.executable).parent / "configsvc"),
        "serve",
        "--etcd",
        etcd_url,
        "--port",
        str(port),
        "--keepalive",
        "15",
    ]
    if tls is not None:
        args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    env = {**os.environ, "CONFIGSVC_ADMIN_TOKEN": TOKEN, "CONFIGSVC_DATA_DIR": str(data_dir)}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(
    url: str, port: int, pid: int, streams: int, puts: int, context: ssl.SSLContext | None
) -> Figures:
    loop = asyncio.get_running_loop()
    tally = Tally()
    request = watch_request(HOST, port, "/v1/watch?namespace=bench", TOKEN)
    readers: list[LeanReader] = []
    async with httpx.AsyncClient(
        base_url=url, verify=context or False, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as api:
        await api.put("/v1/configs/bench/doc", json=_doc(0))
        await asyncio.sleep(SETTLE_SECONDS)
        rss_before = rss_bytes(pid)
        while len(readers) < streams:
            want = min(BATCH, streams - len(readers))
            opened = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda: LeanReader(request, tally),
                        HOST,
                        port,
                        ssl=context,
                        server_hostname="localhost" if context else None,
                    )
                    for _ in range(want)
                )
            )
            readers += [protocol for _transport, protocol in opened]
            assert await tally.wait_ready(len(readers), READY_WITHIN), "streams not ready"
        tally.expected = len(readers)
        await asyncio.sleep(SETTLE_SECONDS)
        rss_after = rss_bytes(pid)
        cpu_before = cpu_seconds(pid)
        latencies = []
        for number in range(1, puts + 1):
            started = time.perf_counter()
            answer = await api.put("/v1/configs/bench/doc", json=_doc(number))
            done = await tally.wait_delivered(answer.json()["revision"], DELIVERY_WITHIN)
            assert done is not None, "a put did not reach every stream"
            latencies.append(done - started)
            await asyncio.sleep(PUT_GAP_SECONDS)
        cpu = cpu_seconds(pid) - cpu_before
    for reader in readers:
        reader.close()
    latencies.sort()
    return Figures(
        kib_per_stream=(rss_after - rss_before) / streams / 1024,
        cpu_us_per_delivery=cpu / (puts * streams) * 1e6,
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=latencies[int(0.95 * (len(latencies) - 1))] * 1000,
    )


def _doc(number: int) -> dict[str, object]:
    return {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": number + 1}}}}


def wait_ready(url: str, context: ssl.SSLContext | bool) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", verify=context, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--puts", type=int, default=40)
    args = parser.parse_args()
    raise_open_files_limit()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ca = Authority.create(work / "pki")
        cert = ca.issue("service", hosts=("localhost", HOST))
        context = ssl.create_default_context(cafile=ca.cert_path)
        etcd = EtcdProcess(binary=find_etcd_binary(), data_dir=work / "etcd")
        etcd.start()
        results: dict[str, Figures] = {}
        try:
            for name, tls in (("http", None), ("https", (cert.cert, cert.key))):
                port = free_port()
                proc = start_service(etcd.client_url, port, work / name, tls)
                scheme = "https" if tls else "http"
                url = f"{scheme}://localhost:{port}"
                try:
                    wait_ready(url, context if tls else True)
                    results[name] = asyncio.run(
                        measure(
                            url, port, proc.pid, args.streams, args.puts, context if tls else None
                        )
                    )
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
        finally:
            etcd.stop()
    plain, secure = results["http"], results["https"]
    print(f"{args.streams} streams, {args.puts} puts, uvicorn's default loop")
    print(f"{'':24}{'http':>10}{'https':>10}{'ratio':>8}")
    for label, attr in (
        ("memory per stream, KiB", "kib_per_stream"),
        ("CPU per delivery, µs", "cpu_us_per_delivery"),
        ("fan-out p50, ms", "p50_ms"),
        ("fan-out p95, ms", "p95_ms"),
    ):
        a, b = getattr(plain, attr), getattr(secure, attr)
        print(f"{label:24}{a:10.1f}{b:10.1f}{b / a if a else float('nan'):8.2f}")


if __name__ == "__main__":
    main()
