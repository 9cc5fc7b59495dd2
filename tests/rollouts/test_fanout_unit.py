"""The fan-out's rollout moves, fed by a scripted store feed (no etcd): a move reaches the
streams it chooses, once, in revision order with other events, also while they catch up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from configsvc.fanout import Subscriber
from configsvc.rollouts import transitions
from configsvc.rollouts.choice import Identity, is_chosen
from configsvc.store.rollout_record import RolloutRecord
from tests.rollouts.test_logic_unit import T0, record
from tests.watch.test_fanout_unit import (
    Recorder,
    ScriptedFeed,
    ScriptedReplayer,
    make_fanout,
    recorder,
    stored,
)

IDS = [f"pod-{n}" for n in range(40)]


def named(instance: str | None) -> Subscriber:
    identity = Identity(instance) if instance is not None else None
    return Subscriber(frozenset({"prod"}), True, "t", Recorder(), identity=identity)


def commit_transition(feed: ScriptedFeed, rollout: RolloutRecord, version: int) -> RolloutRecord:
    """A transition as the store writes it: the spec its watchers need, then the record."""
    revision = feed.head + 1
    _meta, spec = stored(6 if version == rollout.version else 5, version=version)
    as_written = RolloutRecord.from_stored("prod", "limits", rollout.stored_value(), revision)
    feed.commit(
        ("hspec", f"prod/limits/{version:012d}", spec),
        ("rollout", "prod/limits", rollout.stored_value()),
    )
    return as_written


async def test_moves_reach_the_chosen_streams_in_order_and_only_them() -> None:
    feed, replayer = ScriptedFeed(), ScriptedReplayer()
    fanout = make_fanout(feed, replayer)
    feed.start(10)
    feed.put("prod", "limits", 5)
    streams = {instance: named(instance) for instance in [*IDS, None]}
    for stream in streams.values():
        await fanout.subscribe(stream, feed.head)
    started = commit_transition(feed, record(), 2)
    other = feed.put("prod", "other", 1)
    later = T0 + timedelta(minutes=1)
    step = transitions.step_due(started, later)
    assert step is not None
    stepped = commit_transition(feed, step, 2)
    aborted = commit_transition(
        feed, transitions.abort(stepped, later, "bob", "test"), stepped.base.version
    )
    for instance, stream in streams.items():
        identity = Identity(instance) if instance else None
        wanted = []
        if is_chosen(started, identity):
            wanted.append((started.revision, 2))
        wanted.append((other, 1))
        if is_chosen(stepped, identity) and not is_chosen(started, identity):
            wanted.append((stepped.revision, 2))
        if is_chosen(stepped, identity):
            wanted.append((aborted.revision, 1))
        got = [(rev, data["version"]) for _kind, rev, data in recorder(stream).events]
        assert got == wanted, instance
        for kind, revision, data in recorder(stream).events:
            assert kind == "put" and data["revision"] == revision
            assert ("rollout" in data) == (data["version"] == 2 and data["name"] == "limits")
    await fanout.stop()


async def test_a_move_during_a_catch_up_is_held_and_sent_after_it() -> None:
    feed, replayer = ScriptedFeed(), ScriptedReplayer()
    fanout = make_fanout(feed, replayer)
    feed.start(10)
    chosen = next(i for i in IDS if is_chosen(record(), Identity(i)))
    replayer.revision = 10
    replayer.release.clear()
    stream = named(chosen)
    joining = asyncio.create_task(fanout.subscribe(stream, None))
    await asyncio.sleep(0.01)
    started = commit_transition(feed, record(), 2)
    replayer.release.set()
    await joining
    events = recorder(stream).events
    assert [(kind, rev) for kind, rev, _data in events] == [
        ("snapshot", 10),
        ("put", started.revision),
    ]
    assert events[1][2]["rollout"] == started.id
    await fanout.stop()
