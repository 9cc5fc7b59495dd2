"""RolloutStore against a real etcd: races decided by compare-and-set, the current version
kept whatever the history limit, replays that start over from a snapshot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from configsvc.errors import Conflict
from configsvc.rollouts import transitions
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import NewContent
from configsvc.store.replay import Replayer
from configsvc.store.rollout_record import AbortOn, RolloutState
from configsvc.store.rollouts import RolloutPlan, RolloutStore
from configsvc.store.trimming import StoredVersion, plan_trim

KIND = "RateLimits"
PLAN = RolloutPlan(steps=(10, 50, 100), step_seconds=60, match_labels={}, abort_on=AbortOn())
LATER = datetime.now(UTC) + timedelta(hours=1)
"""A clock at which every step is due."""


def spec(rps: float) -> dict[str, Any]:
    return {"limits": {"chat": {"requests_per_second": rps}}}


def content(rps: float) -> Any:
    return lambda _current: NewContent(KIND, spec(rps), f"rps {rps}")


async def test_of_instances_deciding_the_same_step_one_writes_it(store: EtcdConfigStore) -> None:
    await store.put("prod", "limits", content(5), author="t")
    started = await RolloutStore(store).start("prod", "limits", content(6), PLAN, author="t")
    late = [RolloutStore(store, clock=lambda: LATER) for _ in range(4)]
    results = await asyncio.gather(
        *(
            rollouts.transition(
                "prod",
                "limits",
                transitions.step_due,
                author=transitions.AUTOMATIC,
                expected_revision=started.revision,
            )
            for rollouts in late
        )
    )
    written = [r for r in results if r is not None]
    assert len(written) == 1 and written[0].percent == 50
    history = await store.history("prod", "limits")
    assert [row["message"] for row in history[0].rows()] == ["step 50 %", "started"]


async def test_a_put_and_a_start_exclude_each_other(store: EtcdConfigStore) -> None:
    rollouts = RolloutStore(store)
    winners = set()
    for n in range(10):
        name = f"limits-{n}"
        await store.put("prod", name, content(5), author="t")
        outcomes = await asyncio.gather(
            store.put("prod", name, content(7), author="t"),
            rollouts.start("prod", name, content(6), PLAN, author="t"),
            return_exceptions=True,
        )
        started = await rollouts.get("prod", name)
        assert started is not None
        if isinstance(outcomes[0], Conflict):  # the start won: the put found it
            assert started.base.version == 1
            winners.add("start")
        else:  # the put won: the rollout is over the version it wrote
            assert started.base.version == outcomes[0].document.version == 2
            winners.add("put")
        versions = [record.version for record in await store.history("prod", name)]
        assert sorted(versions) == list(range(1, len(versions) + 1))  # none given twice
    assert winners  # (which one wins each race is up to the scheduler)


async def test_the_current_version_stays_whatever_the_history_limit(
    store: EtcdConfigStore,
) -> None:
    short = EtcdConfigStore(store.kv, history_limit=1)
    for rps in (5, 6):
        await short.put("prod", "limits", content(rps), author="t")
    rollouts = RolloutStore(short)
    await rollouts.start("prod", "limits", content(7), PLAN, author="t")
    current = await short.get("prod", "limits")
    assert current is not None and current.version == 2 and current.spec == spec(6)
    assert [r.version for r in await short.history("prod", "limits")] == [3, 2]
    await rollouts.transition(
        "prod", "limits", lambda r, now: transitions.abort(r, now, "t", "x"), author="t"
    )
    changed = await short.put("prod", "limits", content(8), author="t")
    assert changed.document.version == 4 and changed.document.spec == spec(8)


async def test_a_replay_across_a_rollout_change_starts_over(store: EtcdConfigStore) -> None:
    first = await store.put("prod", "limits", content(5), author="t")
    replayer = Replayer(store.kv, store.layout, store.codec)
    rollouts = RolloutStore(store)
    started = await rollouts.start("prod", "limits", content(6), PLAN, author="t")
    assert await replayer.changes_since(["prod"], first.document.revision) is None
    assert await replayer.changes_since(["prod"], started.revision) == (started.revision, [])
    promoted = await rollouts.transition(
        "prod", "limits", lambda r, now: transitions.promote(r, now, "t"), author="t"
    )
    assert promoted is not None and promoted.state is RolloutState.DONE
    assert await replayer.changes_since(["prod"], started.revision) is None
    snapshot = await replayer.snapshot(["prod"])
    assert [(d.version, d.spec) for d in snapshot.documents] == [(2, spec(6))]


@pytest.mark.parametrize(("keep", "dropped"), [(None, [1]), (1, [1])])
def test_trimming_keeps_the_current_version_under_a_newer_candidate(
    keep: int | None, dropped: list[int]
) -> None:
    versions = {
        ("prod", "limits"): [
            StoredVersion("prod", "limits", 1, 10, 100),
            StoredVersion("prod", "limits", 2, 20, 100),
            StoredVersion("prod", "limits", 3, 30, 100, candidate=True),
        ]
    }
    plan = plan_trim(versions, keep_versions=keep, bytes_per_document=0)
    assert plan.keep_from == {("prod", "limits"): max(dropped) + 1}
