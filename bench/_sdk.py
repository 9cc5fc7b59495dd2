"""SDK propagation: REST PUT -> `on_change` in real `ConfigClient`s, next to a raw etcd put ->
a raw aetcd watcher on the same etcd, both in this process, interleaved put by put."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aetcd
import httpx

RAW_KEY = b"/bench-raw/propagation"
"""Outside the service's key prefix, so that its watch never sees these puts."""
SDK_DOC = "sdk"


@dataclass
class SdkResult:
    raw_etcd: list[float] = field(default_factory=list)
    """Seconds from the start of each etcd put to the watcher's event."""
    sdk_each: list[float] = field(default_factory=list)
    """Seconds from the start of each REST PUT to `on_change`, one sample per client."""
    sdk_last: list[float] = field(default_factory=list)
    """Seconds from the start of each REST PUT to `on_change` at the last client."""
    put_answered: list[float] = field(default_factory=list)
    """Seconds from the start of each REST PUT to its answer (the service's write path)."""
    clients: int = 0
    missed: int = 0


def sdk_unavailable() -> str | None:
    """Why the SDK cannot be measured yet, or None when it can."""
    try:
        from configsvc_client import ConfigClient
    except ImportError as exc:
        return f"`from configsvc_client import ConfigClient` fails ({exc})"
    if not hasattr(ConfigClient, "bind"):
        return "ConfigClient has no bind()"
    return None


class Arrivals:
    """perf_counter times at which a sequence number arrived, and waits for them."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}

    def note(self, seq: int) -> None:
        at = time.perf_counter()
        got = self.times.setdefault(seq, [])
        got.append(at)
        waiter = self._waiters.get(seq)
        if waiter is not None and len(got) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    async def wait(self, seq: int, count: int, within: float) -> list[float]:
        if len(self.times.get(seq, [])) < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[seq] = (count, future)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, within)
            self._waiters.pop(seq, None)
        return self.times.get(seq, [])


async def measure_sdk(
    *,
    url: str,
    token: str,
    etcd_host: str,
    etcd_port: int,
    namespace: str,
    document: Callable[[int], dict[str, Any]],
    read_seq: Callable[[Any], int],
    clients: int,
    puts: int,
    pause: float,
    within: float,
    cache_root: Path,
) -> SdkResult:
    """`document(seq)` is a PUT body; `read_seq(value)` finds seq in a bound value."""
    from configsvc_client import ConfigClient
    from configsvc_schemas import ModelEndpoints

    result = SdkResult(clients=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=within) as http,
        contextlib.AsyncExitStack() as stack,
    ):
        path = f"/v1/configs/{namespace}/{SDK_DOC}"
        (await http.put(path, json=document(0))).raise_for_status()

        sdk_arrivals = Arrivals()

        def on_change(_old: Any, new: Any) -> None:
            if new is not None:
                sdk_arrivals.note(read_seq(new))

        for i in range(clients):
            client: Any = ConfigClient(
                url, token=token, namespaces=[namespace], cache_dir=str(cache_root / f"c{i}")
            )
            binding = client.bind(f"{namespace}/{SDK_DOC}", ModelEndpoints)
            binding.on_change(on_change)
            await stack.enter_async_context(client)
        await sdk_arrivals.wait(0, clients, within)

        etcd = aetcd.Client(host=etcd_host, port=etcd_port)
        stack.push_async_callback(etcd.close)
        first = await etcd.put(RAW_KEY, b"0")
        watch = await etcd.watch(RAW_KEY, start_revision=first.header.revision + 1)
        raw_arrivals = Arrivals()

        async def follow() -> None:
            async for event in watch:
                raw_arrivals.note(int(event.kv.value))

        follower = asyncio.create_task(follow())
        try:
            for seq in range(1, puts + 1):
                start = time.perf_counter()
                await etcd.put(RAW_KEY, str(seq).encode())
                got = await raw_arrivals.wait(seq, 1, within)
                if got:
                    result.raw_etcd.append(got[0] - start)
                else:
                    result.missed += 1
                await asyncio.sleep(pause)

                start = time.perf_counter()
                (await http.put(path, json=document(seq))).raise_for_status()
                result.put_answered.append(time.perf_counter() - start)
                got = await sdk_arrivals.wait(seq, clients, within)
                result.sdk_each.extend(at - start for at in got)
                if len(got) >= clients:
                    result.sdk_last.append(max(got) - start)
                else:
                    result.missed += clients - len(got)
                await asyncio.sleep(pause)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
    return result
