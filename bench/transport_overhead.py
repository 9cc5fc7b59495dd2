"""Per-call overhead of `LiveTransport` (and `LiveHTTPClient`) over a plain
`httpx.AsyncClient`, against a minimal local upstream, in one process.

    .venv/bin/python bench/transport_overhead.py [--calls 2000] [--rounds 7]

The upstream runs in its own process: an asyncio server that answers every request on a
kept-alive connection with the same small chat completion (the least an upstream can
do, so that the client's work dominates). Calls are sequential (one in flight). Each
round runs a block of calls of every variant in turn (so that all see the same load);
the figures are the median over rounds of the mean time per call, wall and CPU (this
process's). On a shared machine the best round (as `timeit` reports) is the figure least
disturbed by other load; the median is given too. A second table repeats the calls
against an in-process upstream (a transport that answers at once, no sockets), which
leaves the routing work alone. Variants:

- `httpx`: `httpx.AsyncClient(base_url=upstream).post("/v1/chat/completions", json=body)`;
- `LiveTransport`: the same call through `httpx.AsyncClient(transport=LiveTransport(doc))`
  to a placeholder URL, with documents of 1, 100 and 1,000 endpoints (one group of all
  of them, weighted, for the larger ones): routing work must not grow with them;
- `LiveHTTPClient`: `http.post("/chat/completions", json=body)`.
A last table times the routing decision alone (plan a call, pick its first endpoint) for
each document size.
Figures are given as the difference from the baseline and as its ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "schemas", ROOT / "clients" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
from configsvc_client.live import LiveHTTPClient, LiveRouter, LiveTransport  # noqa: E402
from configsvc_schemas import ModelEndpoints  # noqa: E402

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(ANSWER)).encode()
    + b"\r\n\r\n"
    + ANSWER
)
BODY = {
    "model": "placeholder",
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say hi."},
    ],
    "max_tokens": 16,
}
ENDPOINT_COUNTS = (1, 100, 1000)
WARMUP_CALLS = 200
DECISION_REPEATS = 5


class _Upstream(asyncio.Protocol):
    """Answers each request (head and Content-Length body) with RESPONSE."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.transport.write(RESPONSE)


def serve(port: int) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Upstream, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def document(base_url: str, endpoints: int) -> ModelEndpoints:
    names = [f"e{i}" for i in range(endpoints)]
    spec: dict[str, Any] = {
        "endpoints": {
            name: {"base_url": base_url, "model": "m", "timeout": {"read": 30}} for name in names
        },
        "fallbacks": names[1:4],
    }
    if endpoints == 1:
        spec["default"] = names[0]
    else:
        spec["groups"] = {"all": {name: 1 + i % 3 for i, name in enumerate(names)}}
        spec["default"] = "all"
    return ModelEndpoints.model_validate(spec)


Variant = Callable[[], Awaitable[httpx.Response]]


class _InProcess(httpx.AsyncBaseTransport):
    """An upstream inside the process: the same answer at once, no sockets."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(ANSWER))


async def measure(variants: dict[str, Variant], calls: int, rounds: int) -> dict[str, Any]:
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for call in variants.values():
        for _ in range(WARMUP_CALLS):
            (await call()).raise_for_status()
    for _ in range(rounds):
        for name, call in variants.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                response = await call()
                assert response.status_code == 200
            wall[name].append((time.perf_counter() - w0) / calls * 1e6)
            cpu[name].append((time.process_time() - c0) / calls * 1e6)
    return {
        name: (min(wall[name]), min(cpu[name]), statistics.median(wall[name])) for name in variants
    }


async def bench(
    upstream: str, calls: int, rounds: int, inner: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    base_url = f"{upstream}/v1"
    plain = httpx.AsyncClient(base_url=base_url, timeout=30, transport=inner)
    clients: list[httpx.AsyncClient] = [plain]
    variants: dict[str, Variant] = {
        "httpx": lambda: plain.post("/chat/completions", json=BODY),
    }
    for count in ENDPOINT_COUNTS:
        live = httpx.AsyncClient(
            base_url="http://configsvc.invalid/v1",
            transport=LiveTransport(document(base_url, count), transport=inner),
            timeout=None,
        )
        clients.append(live)
        variants[f"LiveTransport, {count} endpoints"] = lambda client=live: client.post(
            "/chat/completions", json=BODY
        )
    http = LiveHTTPClient(document(base_url, 1), transport=inner)
    variants["LiveHTTPClient, 1 endpoint"] = lambda: http.post("/chat/completions", json=BODY)
    try:
        return await measure(variants, calls, rounds)
    finally:
        for client in clients:
            await client.aclose()
        await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per block")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        results = asyncio.run(bench(f"http://127.0.0.1:{port}", args.calls, args.rounds))
    finally:
        server.terminate()
        server.wait()
    print(
        f"{args.rounds} rounds x {args.calls} sequential calls per variant; Python "
        f"{platform.python_version()}, httpx {httpx.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    print("Loopback upstream (its own process):\n")
    report(results)
    inner = asyncio.run(bench("http://upstream.test", args.calls, args.rounds, _InProcess()))
    print("\nIn-process upstream (no sockets): the routing work alone\n")
    report(inner)
    print("\nThe routing decision alone (plan a call, pick a group member), best of 5:\n")
    print("| endpoints | µs per decision |")
    print("|---:|---:|")
    for count in ENDPOINT_COUNTS:
        print(f"| {count:,} | {decision_us(count):.1f} |")


def decision_us(endpoints: int, number: int = 20_000) -> float:
    """Seconds per routing decision (plan + first target) for a document of that size."""
    router = LiveRouter(document("http://upstream.test/v1", endpoints))
    snapshot = router.snapshot()
    best = min(
        timeit.repeat(lambda: next(router.plan(snapshot)), number=number, repeat=DECISION_REPEATS)
    )
    return best / number * 1e6


def report(results: dict[str, Any]) -> None:
    base_wall, base_cpu, _ = results["httpx"]
    print(
        "| variant | wall µs/call (best) | vs httpx | CPU µs/call (best) | vs httpx | wall median |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, median) in results.items():
        if name == "httpx":
            print(f"| {name} (baseline) | {wall:.0f} | | {cpu:.0f} | | {median:.0f} |")
        else:
            print(
                f"| {name} | {wall:.0f} | +{wall - base_wall:.0f} ({wall / base_wall:.2f}x) "
                f"| {cpu:.0f} | +{cpu - base_cpu:.0f} ({cpu / base_cpu:.2f}x) | {median:.0f} |"
            )


if __name__ == "__main__":
    main()
