"""The pure logic of rollouts, with no etcd: the choice, the steps in time (an injected
clock), the transitions' rules, the automatic abort, and the moves of the push."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from configsvc.errors import BadRequest, Conflict
from configsvc.fanout.encoding import EncodedEvent
from configsvc.fanout.variants import RolloutMove
from configsvc.rollouts import transitions
from configsvc.rollouts.choice import BUCKETS, Identity, bucket, identity_from_headers, is_chosen
from configsvc.rollouts.signals import Reported, abort_reason
from configsvc.store.rollout_record import (
    AbortOn,
    Base,
    RolloutRecord,
    RolloutState,
    TransitionAction,
)
from tests.rollouts.helpers import expected_chosen

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
POPULATION = 10_000
TOLERANCE = 0.02
"""Share of instances chosen vs the percent asked, over 10,000 ids (the hash is uniform:
the standard deviation at 50 % is 0.5 %)."""


def record(
    steps: tuple[float, ...] = (10, 50, 100),
    step_seconds: float = 60,
    labels: dict[str, str] | None = None,
    abort_on: AbortOn | None = None,
) -> RolloutRecord:
    base = Base(1, "RateLimits", 5, "2026-12-06T11:00:00.000Z", "alice", None)
    fresh = RolloutRecord(
        namespace="prod",
        name="limits",
        id="0123456789abcdef",
        version=2,
        kind="RateLimits",
        message="raise",
        created_at="",
        created_by="",
        base=base,
        steps=steps,
        step_seconds=step_seconds,
        match_labels=labels or {},
        abort_on=abort_on or AbortOn(),
        state=RolloutState.RUNNING,
        step=0,
        step_elapsed=0.0,
        step_since=None,
        reason=None,
    )
    started = fresh.after(
        TransitionAction.STARTED, "started", T0, "alice", step_since=_at(T0), created_by="alice"
    )
    return _stored(started, 10)


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stored(rollout: RolloutRecord, revision: int) -> RolloutRecord:
    """As read back from the store at `revision` (the newest transition gets it)."""
    return RolloutRecord.from_stored("prod", "limits", rollout.stored_value(), revision)


# ---- the choice ------------------------------------------------------------------------------


def test_the_share_chosen_follows_the_percent_and_only_grows() -> None:
    rollout = record()
    ids = [f"host-{n}-{n * 7919 % 65536:04x}" for n in range(POPULATION)]
    chosen_before: set[str] = set()
    for percent in (1, 10, 25, 50, 90, 100):
        chosen = {i for i in ids if bucket(rollout.id, i) < round(percent * BUCKETS / 100)}
        assert abs(len(chosen) / POPULATION - percent / 100) <= TOLERANCE, percent
        assert chosen_before <= chosen
        chosen_before = chosen
    assert len(chosen_before) == POPULATION


def test_the_choice_is_the_documented_hash_and_independent_per_rollout() -> None:
    identities: dict[str, dict[str, str]] = {f"pod-{n}": {} for n in range(200)}
    rollout = record()
    mine = {i for i in identities if is_chosen(rollout, Identity(i))}
    assert mine == expected_chosen(rollout.id, 10, identities)
    other = RolloutRecord.from_stored(
        "prod", "limits", rollout.stored_value().replace(rollout.id.encode(), b"f" * 16), 10
    )
    assert {i for i in identities if is_chosen(other, Identity(i))} != mine


def test_labels_must_all_match_and_an_unnamed_client_is_never_chosen() -> None:
    rollout = record(steps=(100, 100.0 + 0), labels={"region": "eu", "tier": "web"})
    assert is_chosen(rollout, Identity("a", {"region": "eu", "tier": "web", "x": "y"}))
    assert not is_chosen(rollout, Identity("a", {"region": "eu"}))
    assert not is_chosen(rollout, None)


@pytest.mark.parametrize(
    ("instance", "labels"),
    [("-x", None), ("ok", "[]"), ("ok", "{bad"), ("ok", '{"k": 1}'), (None, '{"k": "v"}')],
)
def test_malformed_identities_are_refused(instance: str | None, labels: str | None) -> None:
    with pytest.raises(BadRequest):
        identity_from_headers(instance, labels)


def test_an_identity_from_headers() -> None:
    assert identity_from_headers(None, None) is None
    found = identity_from_headers("gw-1", '{"region":"eu"}')
    assert found == Identity("gw-1", {"region": "eu"})


# ---- steps in time ---------------------------------------------------------------------------


def test_steps_follow_time_and_the_last_one_promotes() -> None:
    rollout = record(steps=(10, 50, 100), step_seconds=60)
    assert transitions.step_due(rollout, T0 + timedelta(seconds=59)) is None
    second = transitions.step_due(rollout, T0 + timedelta(seconds=60))
    assert second is not None
    assert (second.step, second.percent, second.last.message) == (1, 50, "step 50 %")
    assert second.last.by == transitions.AUTOMATIC
    second = _stored(second, 11)
    assert second.transitions[0].revision == 10 and second.last.revision == 11
    assert second.next_step_at() == T0 + timedelta(seconds=120)
    done = transitions.step_due(second, T0 + timedelta(seconds=120))
    assert done is not None and done.state is RolloutState.DONE and done.percent == 100
    assert done.last.message == "promoted"


def test_a_pause_holds_the_step_and_a_resume_serves_what_remained() -> None:
    rollout = record(step_seconds=60)
    paused = _stored(transitions.pause(rollout, T0 + timedelta(seconds=40), "bob", "lunch"), 11)
    assert paused.last.message == "paused: lunch" and paused.step_elapsed == 40
    assert paused.reason == "lunch"
    assert transitions.step_due(paused, T0 + timedelta(hours=5)) is None
    resumed_at = T0 + timedelta(hours=1)
    resumed = _stored(transitions.resume(paused, resumed_at, "bob"), 12)
    assert resumed.next_step_at() == resumed_at + timedelta(seconds=20)
    assert resumed.reason is None
    assert transitions.step_due(resumed, resumed_at + timedelta(seconds=19)) is None
    assert transitions.step_due(resumed, resumed_at + timedelta(seconds=20)) is not None


def test_transitions_are_refused_from_the_wrong_state() -> None:
    rollout = record()
    with pytest.raises(Conflict):
        transitions.resume(rollout, T0, "bob")
    aborted = _stored(transitions.abort(rollout, T0, "bob", "why"), 11)
    assert aborted.last.message == "aborted: why" and aborted.percent == 10
    for act in (transitions.promote, transitions.pause, transitions.resume):
        with pytest.raises(Conflict):
            act(aborted, T0, "bob")
    with pytest.raises(Conflict):
        transitions.abort(aborted, T0, "bob", "again")


def test_pauses_are_bounded_so_that_the_end_always_fits() -> None:
    rollout = record()
    moment = T0
    with pytest.raises(Conflict):
        for _ in range(100):
            rollout = _stored(transitions.pause(rollout, moment, "bob"), 1)
            rollout = _stored(transitions.resume(rollout, moment, "bob"), 1)
    assert transitions.promote(rollout, moment, "bob").state is RolloutState.DONE


# ---- the automatic abort ---------------------------------------------------------------------


def member(instance: str, **content: Any) -> Reported:
    return Reported(instance, {"labels": {}, "documents": {}, "rejected": {}, **content})


def chosen_ids(rollout: RolloutRecord, count: int, chosen: bool = True) -> list[str]:
    found = [f"i-{n}" for n in range(1000) if is_chosen(rollout, Identity(f"i-{n}")) == chosen]
    return found[:count]


def test_rejections_by_chosen_instances_count_and_others_do_not() -> None:
    rollout = record(abort_on=AbortOn(rejected=2))
    refusal = {"prod/limits": {"version": 2, "revision": 10, "error": "no"}}
    old_refusal = {"prod/limits": {"version": 1, "revision": 3, "error": "no"}}
    one, two = chosen_ids(rollout, 2)
    (outsider,) = chosen_ids(rollout, 1, chosen=False)
    members = [member(one, rejected=refusal), member(outsider, rejected=refusal)]
    assert abort_reason(rollout, members) is None
    assert abort_reason(rollout, [*members, member(two, rejected=old_refusal)]) is None
    reason = abort_reason(rollout, [*members, member(two, rejected=refusal)])
    assert reason is not None and reason.startswith("2 chosen instances rejected version 2")


def test_an_error_rate_counts_once_enough_tries_were_made() -> None:
    rollout = record(abort_on=AbortOn(error_rate=0.2, min_calls=50))
    a, b = chosen_ids(rollout, 2)
    (outsider,) = chosen_ids(rollout, 1, chosen=False)

    def calls(tries: int, failures: int, version: int = 2) -> dict[str, Any]:
        return {"prod/limits": {"version": version, "tries": tries, "failures": failures}}

    assert abort_reason(rollout, [member(a, calls=calls(40, 40))]) is None  # too few tries
    assert (
        abort_reason(rollout, [member(a, calls=calls(40, 4)), member(b, calls=calls(20, 6))])
        is None
    )
    noisy = [member(a, calls=calls(40, 4)), member(b, calls=calls(20, 9))]
    reason = abort_reason(rollout, noisy)
    assert reason is not None and reason.startswith("error rate 21.7% over 60 tries")
    others = [member(outsider, calls=calls(100, 100)), member(a, calls=calls(100, 0, 1))]
    assert abort_reason(rollout, others) is None
    assert abort_reason(record(), noisy) is None  # no abort_on: never


# ---- the moves of the push -------------------------------------------------------------------


def test_a_move_reaches_the_newly_chosen_and_an_abort_the_previously_chosen() -> None:
    rollout = record(steps=(10, 50, 100))
    event = EncodedEvent(rollout.revision, "prod", b"x", None)
    identities = [Identity(f"i-{n}") for n in range(400)]

    def moved(by: RolloutRecord) -> set[str]:
        move = RolloutMove(by, event)
        return {i.instance for i in identities if move.resolve(i) is not None}

    def chosen(by: RolloutRecord) -> set[str]:
        return {i.instance for i in identities if is_chosen(by, i)}

    assert moved(rollout) == chosen(rollout)
    step = transitions.step_due(rollout, T0 + timedelta(minutes=1))
    assert step is not None
    step = _stored(step, 11)
    assert moved(step) == chosen(step) - chosen(rollout)
    aborted = _stored(transitions.abort(step, T0 + timedelta(minutes=2), "bob", "x"), 12)
    assert moved(aborted) == chosen(step)
    paused = _stored(transitions.pause(step, T0 + timedelta(minutes=2), "bob"), 12)
    assert moved(paused) == set()
    assert RolloutMove(aborted, event).resolve(None) is None
