"""One fault run: the cluster, two service instances, a CAS writer, SDK clients, streams.

A test builds what it needs (`start_writer`, `add_sdk_clients`, `add_streams`), injects its
faults, then calls `finish`: the writer stops, the store's final state and history are
read, every client is waited for (generous deadline) until it holds that final state, and
the checker runs. `finish` returns the figures of the run. A run that trims history
(a reclaim) reads it first with `read_store` and gives that to `finish`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from configsvc_client import ClientOptions, ConfigClient, Document
from support import ADMIN_TOKEN

from tests.faults._checker import (
    StoreState,
    check_changes,
    check_streams,
    check_writes,
    merge_histories,
    read_store,
)
from tests.faults._cluster import EtcdCluster
from tests.faults._services import KEEPALIVE, ServiceInstance
from tests.faults._streams import StreamFleet
from tests.faults._writer import CasWriter
from tests.sdk.helpers import FAST

NAMESPACE = "faults"
DOCS = ["alpha", "beta", "gamma"]
"""Three documents written in turn to two instances in turn: each goes to both."""
CONVERGE_WITHIN = 90.0
"""Seconds every client may take to reach the final state after the last write."""
SDK_OPTIONS: ClientOptions = FAST.replace(
    server_keepalive=KEEPALIVE,
    backoff_initial=0.05,
    backoff_max=1.0,
    poll_interval=0.25,
    connect_timeout=2,
    read_timeout=4,
    cache_fallback_after=1,
    start_timeout=20,
    stop_timeout=10,
)
"""The SDK with millisecond-to-second intervals, and the fault suite's keep-alive."""


class SdkObserver:
    """A full `ConfigClient` that records every version its `on_change` applies."""

    def __init__(self, name: str, urls: list[str], options: ClientOptions = SDK_OPTIONS) -> None:
        self.name = name
        self.client = ConfigClient(urls, ADMIN_TOKEN, namespaces=[NAMESPACE], options=options)
        self.changes: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()
        self.client.on_change(self._record)

    def _record(self, old: Document | None, new: Document | None) -> None:
        with self._lock:
            if new is not None:
                self.changes.append((new.name, new.version, new.revision))
            elif old is not None:
                self.changes.append((old.name, -1, -1))

    def held(self) -> dict[str, tuple[int, int]]:
        """(version, revision) of each document the client holds, by document name."""
        return {doc.name: (doc.version, doc.revision) for doc in self.client.documents().values()}

    def holds(self, final: dict[str, tuple[int, int]]) -> bool:
        return self.held() == final and self.client.status.mode == "streaming"

    def recorded(self) -> list[tuple[str, int, int]]:
        with self._lock:
            return list(self.changes)


@dataclass
class Scenario:
    cluster: EtcdCluster | None
    """None for a service that runs its own etcd (the embedded default)."""
    services: list[ServiceInstance]
    workdir: Path
    writer: CasWriter | None = None
    observers: list[SdkObserver] = field(default_factory=list)
    fleets: list[StreamFleet] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.services]

    def failover(self, first: int) -> list[str]:
        """The service URLs starting with instance `first` (a client's failover order)."""
        return self.urls[first:] + self.urls[:first]

    def start_writer(self, interval: float | None = None) -> CasWriter:
        kwargs = {} if interval is None else {"interval": interval}
        self.writer = CasWriter(self.urls, ADMIN_TOKEN, NAMESPACE, DOCS, **kwargs)
        self.writer.create_documents()
        self.writer.start()
        return self.writer

    def add_sdk_clients(
        self, per_instance: int = 2, urls: list[str] | None = None, label: str = "sdk"
    ) -> list[SdkObserver]:
        """Start SDK clients: `per_instance` on each instance (failing over to the other),
        or, with `urls`, that many on those URLs."""
        lists = [urls] * per_instance if urls else [
            self.failover(i) for i in range(len(self.services)) for _ in range(per_instance)
        ]  # fmt: skip
        added = [SdkObserver(f"{label}-{n}", u) for n, u in enumerate(lists)]
        for observer in added:
            observer.client.start()
        self.observers += added
        return added

    def add_streams(
        self, per_instance: int, urls: list[str] | None = None, **fleet_options: Any
    ) -> StreamFleet:
        """Open `per_instance` lean streams on each instance (failing over to the other),
        or, with `urls`, that many on those URLs. Stream i of the default layout starts on
        instance i % 2."""
        fleet = StreamFleet(ADMIN_TOKEN, NAMESPACE, **fleet_options)
        self.fleets.append(fleet)
        lists = [urls] * per_instance if urls else [
            self.failover(i) for _ in range(per_instance) for i in range(len(self.services))
        ]  # fmt: skip
        fleet.open(lists)
        return fleet

    def api(self) -> httpx.Client:
        """An admin client of the first instance that is running."""
        running = next(s for s in self.services if s.running)
        return running.client()

    def read_store(self) -> StoreState:
        """The documents' state and history now."""
        with self.api() as api:
            return read_store(api, NAMESPACE, DOCS)

    def finish(
        self, within: float = CONVERGE_WITHIN, read_before: StoreState | None = None
    ) -> dict[str, Any]:
        """Stop writing, read the final state, wait for every client to hold it, check.

        `read_before`: the history as read before a trim, merged with what is left."""
        assert self.writer is not None
        self.writer.stop()
        stopped = time.monotonic()
        store = self.read_store()
        if read_before is not None:
            store = merge_histories(read_before, store)
        self.figures.update(check_writes(self.writer.log, store))
        gap, _ = self.writer.log.longest_gap(self.writer.started_at)
        self.figures["longest_write_gap_s"] = round(gap, 3)
        latencies = sorted(a.acked - a.sent for a in self.writer.log.acks)
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            self.figures[f"write_latency_{name}_ms"] = round(1000 * value, 1)
        self._wait_converged(store, within)
        self.figures["converged_after_last_write_s"] = round(time.monotonic() - stopped, 3)
        for observer in self.observers:
            check_changes(observer.name, observer.recorded(), store)
        for fleet in self.fleets:
            check_streams(fleet.records(), store)
        return self.figures

    def _wait_converged(self, store: StoreState, within: float) -> None:
        deadline = time.monotonic() + within
        for observer in self.observers:
            while not observer.holds(store.final):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{observer.name} not on the final state {store.final} after {within} s: "
                        f"{observer.client.status} {observer.held()}"
                    )
                time.sleep(0.02)
        for fleet in self.fleets:
            fleet.wait(
                lambda r: r.streaming and r.docs == store.final,
                max(1.0, deadline - time.monotonic()),
            )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        for observer in self.observers:
            observer.client.stop()
        for fleet in self.fleets:
            fleet.close()
