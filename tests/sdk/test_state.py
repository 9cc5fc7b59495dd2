"""ConfigState: applying snapshots and changes in any interleaving, never going back."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from configsvc_client import Change, Document, Snapshot, SourceState, Update
from configsvc_client._state import ConfigState
from configsvc_client.kinds import RateLimits


def doc(
    key: str, revision: int, rps: float = 5, version: int = 1, kind: str = "RateLimits"
) -> Document:
    ns, name = key.split("/")
    spec = {"limits": {"chat": {"requests_per_second": rps}}}
    return Document(ns, name, kind, spec, version=version, revision=revision)


def snap(revision: int, *docs: Document, namespaces: tuple[str, ...] | None = None) -> Update:
    return Update(SourceState.VALID, snapshot=Snapshot(revision, docs, namespaces))


def changes(*items: Change) -> Update:
    return Update(SourceState.VALID, changes=items)


def run(state: ConfigState, *updates: Update) -> None:
    for update in updates:
        for note in state.apply(update):
            note()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any]] = []

    def __call__(self, old: Document | None, new: Document | None) -> None:
        self.seen.append((old and (old.key, old.revision), new and (new.key, new.revision)))


def test_snapshot_then_ordered_changes() -> None:
    state = ConfigState(["prod"])
    rec = Recorder()
    state.add_listener(rec)
    assert not state.complete and state.resume_point() is None
    run(state, snap(10, doc("prod/a", 5), doc("prod/b", 9)))
    assert state.complete and state.resume_point() == 10
    run(
        state,
        changes(Change.put(doc("prod/a", 11, rps=6, version=2)), Change.delete("prod", "b", 12)),
    )
    assert rec.seen == [
        (None, ("prod/a", 5)),
        (None, ("prod/b", 9)),
        (("prod/a", 5), ("prod/a", 11)),
        (("prod/b", 9), None),
    ]
    assert state.revision == 12 and state.resume_point() == 12
    assert set(state.documents()) == {"prod/a"}


def test_replays_and_older_snapshots_change_nothing() -> None:
    state = ConfigState(["prod"])
    rec = Recorder()
    state.add_listener(rec)
    put11 = Change.put(doc("prod/a", 11, version=2))
    run(state, snap(10, doc("prod/a", 5)), changes(put11, Change.delete("prod", "a", 12)))
    count = len(rec.seen)
    run(state, changes(put11, Change.delete("prod", "a", 12)), snap(11, doc("prod/a", 11)))
    assert len(rec.seen) == count
    assert state.get("prod/a") is None and state.revision == 12


def test_polled_namespaces_then_a_resumed_stream_neither_duplicate_nor_resurrect() -> None:
    """Polls read namespaces at different revisions; the stream then resumes from the
    lowest and replays what a poll already covered."""
    state = ConfigState(["a", "b"])
    rec = Recorder()
    state.add_listener(rec)
    run(state, snap(100, namespaces=None))
    run(state, snap(106, doc("a/x", 104), namespaces=("a",)))  # b/tmp created 103, deleted 105
    run(state, snap(108, doc("b/y", 107), namespaces=("b",)))
    assert state.resume_point() == 106
    replay = changes(
        Change.put(doc("b/tmp", 103)),
        Change.put(doc("a/x", 104)),
        Change.delete("b", "tmp", 105),
        Change.put(doc("b/y", 107)),
        Change.put(doc("a/x", 109, version=2)),
    )
    run(state, replay)
    assert rec.seen == [
        (None, ("a/x", 104)),
        (None, ("b/y", 107)),
        (("a/x", 104), ("a/x", 109)),
    ]
    assert state.resume_point() == 109


def test_a_failing_document_is_not_applied_and_reported() -> None:
    state = ConfigState(["prod"])
    binding = state.bind("prod/a", RateLimits)
    seen: list[Any] = []
    binding.on_change(lambda old, new: seen.append(new.limits["chat"].requests_per_second))
    run(state, snap(10, doc("prod/a", 5, rps=5)))
    run(state, changes(Change.put(doc("prod/a", 11, rps=-1, version=2))))
    assert binding.value is not None
    assert binding.value.limits["chat"].requests_per_second == 5
    assert binding.document is not None and binding.document.version == 1
    assert (
        binding.error and "v2 rejected" in binding.error and "requests_per_second" in binding.error
    )
    assert state.error == binding.error
    assert state.get("prod/a").revision == 5  # type: ignore[union-attr]
    run(state, changes(Change.put(doc("prod/a", 12, rps=7, version=3))))
    assert seen == [5, 7]
    assert binding.error is None and state.error is None


def test_kind_mismatch_is_rejected() -> None:
    state = ConfigState(["prod"])
    binding = state.bind("prod/a", RateLimits)
    run(state, snap(10, doc("prod/a", 5, kind="AuthKeys")))
    assert binding.value is None
    assert binding.error and "kind" in binding.error


def test_bind_after_values_gives_the_value_at_once() -> None:
    state = ConfigState(["prod"])
    run(state, snap(10, doc("prod/a", 5)))
    assert state.bind("prod/a", RateLimits).value is not None
    with pytest.raises(ValueError, match="not watched"):
        state.bind("other/a", RateLimits)
    with pytest.raises(ValueError):
        state.bind("no-slash", RateLimits)


def test_a_failing_callback_is_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = ConfigState(["prod"])
    rec = Recorder()

    def broken(_old: Document | None, _new: Document | None) -> None:
        raise RuntimeError("boom")

    state.add_listener(broken)
    state.add_listener(rec)
    with caplog.at_level(logging.ERROR, logger="configsvc_client"):
        run(state, snap(10, doc("prod/a", 5)), changes(Change.put(doc("prod/a", 11, version=2))))
    assert len(rec.seen) == 2
    assert "boom" in caplog.text


def test_the_held_version_sent_again_calls_no_one() -> None:
    """As a staged rollout sends it (its candidate once promoted, the current version to an
    instance it moves back): a newer revision of the same version, kind and spec."""
    state = ConfigState(["prod"])
    rec = Recorder()
    state.add_listener(rec)
    run(state, snap(10, doc("prod/a", 5)), changes(Change.put(doc("prod/a", 11))))
    assert len(rec.seen) == 1
    held = state.get("prod/a")
    assert held is not None and held.revision == 11
    run(state, changes(Change.put(doc("prod/a", 12, rps=6))))  # same number, other spec
    assert len(rec.seen) == 2


def test_dynamic_namespaces_follow_the_source() -> None:
    state = ConfigState(None)
    run(state, snap(1))
    assert state.complete
    run(state, snap(2, doc("x/a", 2), doc("y/b", 2)))
    run(state, snap(3, doc("y/b", 2)))
    assert set(state.documents()) == {"y/b"}
