"""Trimming history: by a count of versions to keep, and by bytes per document and in all.

History records carry the size of their version's spec (`HistoryRecord.spec_bytes`), so a
plan is made from the metadata alone. The newest version of every document is always kept
(it is the current document, or the record of its deletion), and so are a rollout's
candidates newer than it (never current, or not yet); older ones go oldest first, so
what stays of a document's history is always its newest versions, and a replay that finds a
gap falls back to a snapshot. Trimming only deletes, with plain deletes that etcd allows
while it is over its space quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from configsvc.errors import ApiError
from configsvc.metrics import Metrics
from configsvc.store.audit import forget_audit_before
from configsvc.store.etcd_client import EtcdKV, prefix_end
from configsvc.store.keys import KeyLayout
from configsvc.store.records import HistoryRecord, utc_format

log = logging.getLogger("configsvc.history")

DocKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    namespace: str
    name: str
    version: int
    revision: int
    spec_bytes: int
    candidate: bool = False
    """A rollout's candidate that never became current: the version before it is still the
    current one (or was, when the rollout was aborted)."""


@dataclass
class TrimPlan:
    """Per document, the first version kept (every older one goes)."""

    keep_from: dict[DocKey, int] = field(default_factory=dict)
    versions: int = 0
    """Versions removed."""
    spec_bytes: int = 0
    """Spec bytes removed."""

    def drop(self, version: StoredVersion) -> None:
        key = (version.namespace, version.name)
        self.keep_from[key] = max(self.keep_from.get(key, 0), version.version + 1)
        self.versions += 1
        self.spec_bytes += version.spec_bytes


async def stored_versions(kv: EtcdKV, layout: KeyLayout) -> dict[DocKey, list[StoredVersion]]:
    """Every history record's size, by document, oldest first (one range read)."""
    root = layout.history_all()
    response = await kv.range(root, prefix_end(root))
    found: dict[DocKey, list[StoredVersion]] = defaultdict(list)
    for item in response.kvs:
        parsed = layout.split_version_key(item.key[len(root) :].decode())
        if parsed is None:
            continue
        ns, name, version = parsed
        record = HistoryRecord.from_stored(ns, name, item.value, item.mod_revision)
        size = record.spec_bytes
        if size is None:  # written by a release that did not count it
            size = await _spec_size(kv, layout, ns, name, version)
        found[(ns, name)].append(
            StoredVersion(
                ns, name, version, item.mod_revision, size, candidate=record.pending_candidate
            )
        )
    for versions in found.values():
        versions.sort(key=lambda v: v.version)
    return found


async def _spec_size(kv: EtcdKV, layout: KeyLayout, ns: str, name: str, version: int) -> int:
    response = await kv.range(layout.history_spec(ns, name, version))
    return len(response.kvs[0].value) if response.kvs else 0


def plan_trim(
    versions: dict[DocKey, list[StoredVersion]],
    *,
    keep_versions: int | None = None,
    bytes_per_document: int | None = None,
    bytes_total: int | None = None,
) -> TrimPlan:
    """What to remove so that each document keeps at most `keep_versions` versions and its
    past versions (all but the newest) hold at most `bytes_per_document` spec bytes, and
    past versions hold at most `bytes_total` in all; the oldest go first."""
    plan = TrimPlan()
    past: list[StoredVersion] = []
    for doc_versions in versions.values():
        kept = doc_versions[: _newest_settled(doc_versions)]  # it always stays, and after it
        # only rollout candidates newer than the current version, which also stay
        if keep_versions is not None:
            cut = max(0, len(doc_versions) - keep_versions)
            for version in kept[:cut]:
                plan.drop(version)
            kept = kept[cut:]
        if bytes_per_document is not None:
            held = sum(v.spec_bytes for v in kept)
            while kept and held > bytes_per_document:
                held -= kept[0].spec_bytes
                plan.drop(kept.pop(0))
        past += kept
    if bytes_total is not None:
        held = sum(v.spec_bytes for v in past)
        for version in sorted(past, key=lambda v: v.revision):
            if held <= bytes_total:
                break
            held -= version.spec_bytes
            plan.drop(version)
    return plan


def _newest_settled(doc_versions: list[StoredVersion]) -> int:
    """The index of the newest version that is not a pending rollout candidate (the current
    one, or the deletion), or of the newest when all are."""
    for index in range(len(doc_versions) - 1, -1, -1):
        if not doc_versions[index].candidate:
            return index
    return len(doc_versions) - 1


async def apply_trim(kv: EtcdKV, layout: KeyLayout, plan: TrimPlan) -> None:
    """Delete what `plan` removes (a document's oldest versions: two key ranges each)."""
    for (ns, name), keep_from in plan.keep_from.items():
        for key_of in (layout.history, layout.history_spec):
            await kv.delete_range(key_of(ns, name, 0), key_of(ns, name, keep_from))


def describe(plan: TrimPlan) -> dict[str, int]:
    """`{"ns/name": first version kept}`, for the audit log."""
    return {f"{ns}/{name}": keep for (ns, name), keep in sorted(plan.keep_from.items())}


@dataclass(frozen=True)
class BoundsOptions:
    bytes_per_document: int
    bytes_total: int
    interval: float = 60.0
    """Seconds between checks: history may pass its bounds by what is written meanwhile."""
    audit_retention_days: float = 90.0


class HistoryBounds:
    """Keeps history under its byte bounds, checking every `interval` seconds.

    Every instance runs it; they reach the same plan from the same store, and deleting a
    version twice is harmless.
    """

    def __init__(
        self, kv: EtcdKV, layout: KeyLayout, metrics: Metrics, options: BoundsOptions
    ) -> None:
        self._kv = kv
        self._layout = layout
        self._metrics = metrics
        self.options = options
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="configsvc-history-bounds")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def enforce(self) -> TrimPlan:
        """Trim what is over the bounds now; returns what was removed."""
        options = self.options
        plan = plan_trim(
            await stored_versions(self._kv, self._layout),
            bytes_per_document=options.bytes_per_document,
            bytes_total=options.bytes_total,
        )
        if plan.versions:
            await apply_trim(self._kv, self._layout, plan)
            self._metrics.history_trimmed.labels("bytes").inc(plan.versions)
            log.info(
                "history over its byte bounds: %d versions (%d spec bytes) trimmed",
                plan.versions,
                plan.spec_bytes,
            )
        cutoff = datetime.now(UTC) - timedelta(days=options.audit_retention_days)
        await forget_audit_before(self._kv, self._layout, utc_format(cutoff))
        return plan

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.interval)
            try:
                await self.enforce()
            except ApiError as exc:
                log.debug("history bounds not checked: %s", exc.message)
