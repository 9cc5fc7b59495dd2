"""The checks that follow every fault run, modelled on etcd's robustness tests.

- Writes: no write was acknowledged twice (no two acks of one version, revision or write
  id); every acknowledged write is in the history, at its version and revision; every
  history entry is a write that was attempted, applied once; versions have no gap; no write
  answered with a definite refusal (connection refused, 412, 507) was applied.
- History trimmed during a run (a reclaim): what was read before is merged with what is
  read after (`merge_histories`), and where both hold a version they must agree.
- Clients (SDK clients and lean streams): per document, the applied versions strictly
  increase (no duplicate, none out of order; lean streams also have no gap, and resume
  without a second snapshot), each is the version the history holds at that revision, and
  each client ends on the store's final state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from tests.faults._streams import StreamRecord
from tests.faults._writer import PRECONDITION, REFUSED, STORE_FULL, WriteLog


@dataclass(frozen=True, slots=True)
class HistoryRow:
    version: int
    revision: int
    message: str | None
    action: str


@dataclass(frozen=True, slots=True)
class StoreState:
    """The documents' final (version, revision) and full history, read after a run."""

    final: dict[str, tuple[int, int]]
    history: dict[str, dict[int, HistoryRow]]

    def revision_of(self, doc: str, version: int) -> int | None:
        row = self.history.get(doc, {}).get(version)
        return row.revision if row else None


def read_store(api: httpx.Client, namespace: str, docs: list[str]) -> StoreState:
    """The final state (GET of each document) and each document's history."""
    final: dict[str, tuple[int, int]] = {}
    history: dict[str, dict[int, HistoryRow]] = {}
    for doc in docs:
        response = api.get(f"/v1/configs/{namespace}/{doc}")
        assert response.status_code == 200, response.text
        data = response.json()
        final[doc] = (int(data["version"]), int(data["revision"]))
        rows = api.get(f"/v1/configs/{namespace}/{doc}/history")
        assert rows.status_code == 200, rows.text
        history[doc] = {
            int(r["version"]): HistoryRow(
                int(r["version"]), int(r["revision"]), r.get("message"), r["action"]
            )
            for r in rows.json()["items"]
        }
    return StoreState(final, history)


def merge_histories(earlier: StoreState, later: StoreState) -> StoreState:
    """`later` with the history rows that only `earlier` holds (trimmed meanwhile); a
    version both hold must be the same row in both."""
    problems: list[str] = []
    history: dict[str, dict[int, HistoryRow]] = {}
    for doc in later.history.keys() | earlier.history.keys():
        before, after = earlier.history.get(doc, {}), later.history.get(doc, {})
        problems += [
            f"{doc} v{v}: {before[v]} before, {after[v]} after"
            for v in before.keys() & after.keys()
            if before[v] != after[v]
        ]
        history[doc] = {**before, **after}
    assert not problems, "history changed under a trim:\n" + "\n".join(problems[:30])
    return StoreState(later.final, history)


def check_writes(log: WriteLog, store: StoreState) -> dict[str, Any]:
    """Assert the write promises; returns counts for the report."""
    problems: list[str] = []
    by_version = Counter((a.doc, a.version) for a in log.acks)
    by_revision = Counter(a.revision for a in log.acks)
    by_write = Counter(a.write for a in log.acks)
    problems += [f"{k} acknowledged {n} times" for k, n in by_version.items() if n > 1]
    problems += [f"revision {k} acknowledged {n} times" for k, n in by_revision.items() if n > 1]
    problems += [f"write {k} acknowledged {n} times" for k, n in by_write.items() if n > 1]
    for ack in log.acks:
        row = store.history.get(ack.doc, {}).get(ack.version)
        if row is None:
            problems.append(f"acknowledged {ack} is not in the history")
        elif (row.revision, row.message) != (ack.revision, ack.write):
            problems.append(f"acknowledged {ack} but the history holds {row}")
    applied: Counter[str] = Counter()
    for doc, rows in store.history.items():
        versions = sorted(rows)
        if versions != list(range(1, len(versions) + 1)):
            problems.append(f"{doc}: history versions {versions[:5]}... have a gap")
        if versions and (versions[-1], rows[versions[-1]].revision) != store.final[doc]:
            problems.append(
                f"{doc}: GET says {store.final[doc]}, history ends at {rows[versions[-1]]}"
            )
        for row in rows.values():
            if row.message is None or row.message not in log.attempted:
                problems.append(f"{doc}: history row {row} is no write of this run")
            applied[row.message or ""] += 1
    problems += [f"write {w} applied {n} times" for w, n in applied.items() if n > 1]
    problems += [
        f"write {f.write} answered {f.outcome} ({f.reason}) but applied"
        for f in log.refused()
        if applied[f.write]
    ]
    assert not problems, "write checks failed:\n" + "\n".join(problems[:30])
    ambiguous = log.ambiguous()
    return {
        "acknowledged": len(log.acks),
        "ambiguous": len(ambiguous),
        "ambiguous_applied": sum(1 for f in ambiguous if applied[f.write]),
        "refused": log.count(REFUSED),
        "precondition_failed": log.count(PRECONDITION),
        "store_full": log.count(STORE_FULL),
    }


def check_changes(name: str, changes: list[tuple[str, int, int]], store: StoreState) -> None:
    """One client's applied (document, version, revision), in the order applied."""
    problems: list[str] = []
    last: dict[str, int] = {}
    for doc, version, revision in changes:
        if version <= last.get(doc, 0):
            problems.append(f"{doc}: version {version} applied after {last[doc]}")
        last[doc] = version
        expected = store.revision_of(doc, version)
        if expected != revision:
            problems.append(f"{doc}: v{version} at revision {revision}, history says {expected}")
    assert not problems, f"{name}:\n" + "\n".join(problems[:30])


def check_streams(records: list[StreamRecord], store: StoreState) -> None:
    """Every lean stream kept the stream's promises and ends on the final state."""
    broken = [r for r in records if r.violation_count]
    assert not broken, "\n".join(
        f"stream #{r.index}: {r.violation_count} violations, e.g. {r.violations[:5]}"
        for r in broken[:10]
    )
    # The history keeps every version here, so every resume is replayed exactly: the only
    # snapshot a stream gets is its first.
    resnapped = [r for r in records if r.snapshots != 1]
    assert not resnapped, f"{len(resnapped)} streams got {resnapped[0].snapshots} snapshots"
    behind = [r for r in records if r.docs != store.final]
    assert not behind, f"{len(behind)} streams not on the final state {store.final}: " + str(
        [(r.index, r.docs) for r in behind[:5]]
    )
