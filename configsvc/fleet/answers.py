"""The fleet as the API answers it: a namespace's instances, one document's spread.

Answers are built for one caller: only the namespace asked about (which the caller may
read) shows in an instance's documents and rejections, only namespaces it may read in its
namespace list, and for callers that may not read secrets, any secret value of the
namespace's documents that a rejection's error text holds is masked.

Lag is the time from a version's `updated_at` to an instance's `applied_at` of it (never
below 0: clocks differ). The times of versions are immutable facts: read from the
document (current versions) or its history (older ones), and remembered.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configsvc.auth import Principal
from configsvc.errors import NotFound
from configsvc.fleet.masking import masked, secret_values
from configsvc.fleet.view import MS, FleetView, Member, epoch_ms
from configsvc.registry import KindRegistry
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import Document

MAX_REMEMBERED_TIMES = 50_000
"""`(namespace, name, version)` -> `updated_at` entries kept (then the oldest go)."""
MAX_HISTORY_LOOKBACK = 100
"""Older versions than this many before the current one get no lag (one bounded read)."""


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with milliseconds."""
    stamp = datetime.fromtimestamp(ms / MS, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def p50(values: list[int]) -> int:
    """The nearest-rank median."""
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) / 2) - 1]


@dataclass
class VersionTimes:
    """When each version of a document was written (epoch ms), read once and remembered."""

    store: EtcdConfigStore
    known: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def learn(self, document: Document) -> None:
        self._keep((document.namespace, document.name, document.version), document.updated_at)

    async def fill(
        self, namespace: str, wanted: dict[str, set[int]], current: dict[str, int]
    ) -> None:
        """Look up the versions in `wanted` (by document name) not yet known, from history."""
        for name, versions in wanted.items():
            missing = [v for v in versions if (namespace, name, v) not in self.known]
            newest = current.get(name)
            if not missing or newest is None:
                continue
            depth = newest - min(missing) + 1
            if depth > MAX_HISTORY_LOOKBACK:
                continue
            for record in await self.store.history(namespace, name, depth):
                self._keep((namespace, name, record.version), record.updated_at)

    def get(self, namespace: str, name: str, version: int) -> int | None:
        return self.known.get((namespace, name, version))

    def _keep(self, key: tuple[str, str, int], updated_at: str) -> None:
        if key in self.known:
            return
        if len(self.known) >= MAX_REMEMBERED_TIMES:
            del self.known[next(iter(self.known))]
        self.known[key] = epoch_ms(updated_at)


class FleetAnswers:
    """Builds the fleet's answers from the view and the documents."""

    def __init__(self, view: FleetView, store: EtcdConfigStore, registry: KindRegistry) -> None:
        self._view = view
        self._store = store
        self._registry = registry
        self._times = VersionTimes(store)

    async def namespace(self, caller: Principal, namespace: str) -> dict[str, Any]:
        """`GET /v1/fleet?namespace=NS`: every instance reporting for `namespace`."""
        members = self._view.in_namespace(namespace)
        listing = await self._store.list_namespace(namespace)
        current = {doc.name: doc.version for doc in listing.items}
        for document in listing.items:
            self._times.learn(document)
        wanted: dict[str, set[int]] = {}
        for member in members:
            for key, entry in member.record.content["documents"].items():
                if key.startswith(f"{namespace}/"):
                    wanted.setdefault(key.partition("/")[2], set()).add(int(entry["version"]))
        await self._times.fill(namespace, wanted, current)
        hidden = () if caller.secrets else secret_values(self._registry, listing.items)
        items = [self._item(member, caller, namespace, hidden) for member in members]
        return {"namespace": namespace, "items": items}

    async def document(self, caller: Principal, namespace: str, name: str) -> dict[str, Any]:
        """`GET /v1/configs/{ns}/{name}/fleet`: how the fleet stands on one document."""
        document = await self._store.get(namespace, name)
        if document is None:
            raise NotFound(f"no document {namespace}/{name}")
        key = f"{namespace}/{name}"
        hidden = () if caller.secrets else secret_values(self._registry, [document])
        on_version: Counter[int] = Counter()
        lags: list[int] = []
        rejected: list[dict[str, Any]] = []
        members = self._view.reporting(key)
        for member in members:
            content = member.record.content
            applied = content["documents"].get(key)
            if applied is not None:
                on_version[int(applied["version"])] += 1
                if applied["version"] == document.version:
                    lags.append(_lag(applied["applied_at"], epoch_ms(document.updated_at)))
            refused = content["rejected"].get(key)
            if refused is not None:
                rejected.append(
                    {
                        "instance": member.instance,
                        "app": content.get("app"),
                        "version": refused["version"],
                        "error": masked(refused["error"], hidden),
                    }
                )
        return {
            "namespace": namespace,
            "name": name,
            "version": document.version,
            "updated_at": document.updated_at,
            "instances": len(members),
            "on_version": {str(v): n for v, n in sorted(on_version.items(), reverse=True)},
            "rejected": rejected,
            "lag_ms": {"p50": p50(lags), "max": max(lags)} if lags else None,
        }

    def _item(
        self, member: Member, caller: Principal, namespace: str, hidden: Iterable[str]
    ) -> dict[str, Any]:
        content = member.record.content
        prefix = f"{namespace}/"
        documents = {}
        for key, entry in content["documents"].items():
            if key.startswith(prefix):
                written = self._times.get(namespace, key[len(prefix) :], int(entry["version"]))
                lag = None if written is None else _lag(entry["applied_at"], written)
                documents[key] = {**entry, "lag_ms": lag}
        rejected = {
            key: {**entry, "error": masked(entry["error"], hidden)}
            for key, entry in content["rejected"].items()
            if key.startswith(prefix)
        }
        return {
            "instance": member.instance,
            "app": content.get("app"),
            "labels": content.get("labels", {}),
            "sdk": content.get("sdk"),
            "host": content.get("host"),
            "pid": content.get("pid"),
            "mode": content.get("mode"),
            "last_seen": iso_ms(member.seen_ms),
            "report_interval": content.get("report_interval"),
            "namespaces": [ns for ns in content["namespaces"] if caller.may_access(ns)],
            "documents": documents,
            "rejected": rejected,
        }


def _lag(applied_at: str, written_ms: int) -> int:
    return max(0, epoch_ms(applied_at) - written_ms)
