"""The fault suite's checks catch what they are meant to (pure logic, no processes)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests.faults._checker import (
    HistoryRow,
    StoreState,
    check_changes,
    check_writes,
    merge_histories,
)
from tests.faults._streams import LeanStream, StreamFleet
from tests.faults._writer import Ack, Failure, WriteLog


def put(name: str, version: int, revision: int) -> dict[str, Any]:
    return {"namespace": "ns", "name": name, "version": version, "revision": revision}


def stream() -> LeanStream:
    return LeanStream(cast(StreamFleet, None), 0, ["http://127.0.0.1:1"])


def test_a_stream_in_order_without_gaps_is_clean() -> None:
    s = stream()
    s.event(10, b"snapshot", {"items": [put("a", 1, 8), put("b", 2, 10)]})
    s.event(11, b"put", put("a", 2, 11))
    s.event(12, b"put", put("b", 3, 12))
    s.event(12, b"snapshot", {"items": [put("a", 2, 11), put("b", 3, 12)]})
    assert s.record.violation_count == 0
    assert s.record.docs == {"a": (2, 11), "b": (3, 12)}


@pytest.mark.parametrize(
    ("event_id", "data", "why"),
    [
        (11, put("a", 2, 11), "duplicate"),
        (13, put("a", 4, 13), "gap"),
        (13, put("a", 2, 13), "version 2 after 2"),
        (9, put("b", 1, 9), "out of order"),
    ],
)
def test_a_stream_flags_duplicates_gaps_and_disorder(
    event_id: int, data: dict[str, Any], why: str
) -> None:
    s = stream()
    s.event(10, b"snapshot", {"items": [put("a", 1, 10)]})
    s.event(11, b"put", put("a", 2, 11))
    s.event(event_id, b"put", data)
    assert s.record.violation_count >= 1
    assert any(why in v for v in s.record.violations), s.record.violations


def test_a_stream_flags_a_snapshot_that_goes_back() -> None:
    s = stream()
    s.event(10, b"snapshot", {"items": [put("a", 3, 10)]})
    s.event(9, b"snapshot", {"items": [put("a", 2, 9)]})
    assert s.record.violation_count == 2  # an older snapshot, and an older revision of a


def store(rows: dict[int, tuple[int, str]]) -> StoreState:
    history = {v: HistoryRow(v, rev, msg, "put") for v, (rev, msg) in rows.items()}
    last = max(history)
    return StoreState({"a": (last, history[last].revision)}, {"a": history})


def log(*acks: tuple[int, int, str], attempted: tuple[str, ...] = ()) -> WriteLog:
    result = WriteLog()
    for version, revision, write in acks:
        result.acks.append(Ack("a", version, revision, write, 0, 0.0, 0.0))
        result.attempted.add(write)
    result.attempted.update(attempted)
    return result


def test_writes_consistent_with_the_history_pass() -> None:
    history = store({1: (5, "w1"), 2: (6, "w2"), 3: (7, "w3")})
    writes = log((1, 5, "w1"), (3, 7, "w3"), attempted=("w2",))
    writes.failures.append(Failure("a", "w2", 1, 0.0, 1.0, "ambiguous", "503"))
    counts = check_writes(writes, history)
    assert counts["ambiguous"] == counts["ambiguous_applied"] == 1


@pytest.mark.parametrize(
    ("writes", "why"),
    [
        (log((1, 5, "w1"), (1, 5, "w1")), "acknowledged 2 times"),
        (log((1, 5, "w1"), (3, 9, "w3")), "is not in the history"),
        (log((1, 5, "w1"), (2, 6, "w9")), "but the history holds"),
        (log((1, 5, "w1")), "no write of this run"),
    ],
)
def test_write_checks_catch_lost_doubled_and_phantom_writes(writes: WriteLog, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_writes(writes, store({1: (5, "w1"), 2: (6, "w2")}))


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("store_full", "507 store_full"), ("precondition", "412"), ("refused", "ConnectError")],
)
def test_write_checks_catch_a_definite_refusal_that_was_applied(outcome: str, reason: str) -> None:
    writes = log((1, 5, "w1"), attempted=("w2",))
    writes.failures.append(Failure("a", "w2", 0, 0.0, 1.0, outcome, reason))
    with pytest.raises(AssertionError, match=f"w2 answered {outcome}"):
        check_writes(writes, store({1: (5, "w1"), 2: (6, "w2")}))
    counts = check_writes(writes, store({1: (5, "w1")}))  # refused and not applied: fine
    assert counts[outcome if outcome != "precondition" else "precondition_failed"] == 1


def test_a_history_trimmed_during_the_run_is_merged_with_what_was_read_before() -> None:
    before = store({1: (5, "w1"), 2: (6, "w2")})
    after = store({2: (6, "w2"), 3: (7, "w3")})
    merged = merge_histories(before, after)
    assert sorted(merged.history["a"]) == [1, 2, 3]
    assert merged.final == {"a": (3, 7)}
    check_writes(log((1, 5, "w1"), (2, 6, "w2"), (3, 7, "w3")), merged)
    with pytest.raises(AssertionError, match="history changed under a trim"):
        merge_histories(before, store({2: (9, "w2"), 3: (10, "w3")}))


def test_write_checks_catch_a_write_applied_twice_and_a_version_gap() -> None:
    with pytest.raises(AssertionError, match="applied 2 times"):
        check_writes(log((1, 5, "w1")), store({1: (5, "w1"), 2: (6, "w1")}))
    with pytest.raises(AssertionError, match="gap"):
        check_writes(log((1, 5, "w1")), store({1: (5, "w1"), 3: (7, "w1")}))


def test_client_checks_catch_a_version_applied_again_or_at_the_wrong_revision() -> None:
    history = store({1: (5, "w1"), 2: (6, "w2")})
    check_changes("ok", [("a", 1, 5), ("a", 2, 6)], history)
    with pytest.raises(AssertionError, match="applied after"):
        check_changes("dup", [("a", 1, 5), ("a", 2, 6), ("a", 2, 6)], history)
    with pytest.raises(AssertionError, match="history says"):
        check_changes("wrong", [("a", 2, 7)], history)
