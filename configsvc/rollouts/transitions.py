"""What each transition of a rollout makes of its record: pure functions of the record and
the time, used as the `decide` of `RolloutStore.transition`.

Steps follow time: step `k` is served for `step_seconds` (pauses excluded), then `k + 1`
begins; reaching the last step (100) promotes the candidate for every instance. Every
service instance may find a step due at once; the store's compare-and-set lets one write it.
"""

from __future__ import annotations

from datetime import datetime

from configsvc.errors import Conflict
from configsvc.store.records import utc_format
from configsvc.store.rollout_record import (
    MAX_STEPS,
    MAX_TRANSITIONS,
    RolloutRecord,
    RolloutState,
    TransitionAction,
    format_percent,
)

AUTOMATIC = "configsvc:rollouts"
"""Who the service's own transitions (steps, the last step's promotion, automatic aborts)
are by; no token can have this name."""
MAX_REASON_LENGTH = 500
MAX_PAUSING_TRANSITIONS = MAX_TRANSITIONS - MAX_STEPS - 2
"""A pause is refused past this many transitions, so that the remaining steps, a resume
and the end always fit in `MAX_TRANSITIONS`."""


def _require(record: RolloutRecord, *states: RolloutState) -> None:
    if record.state not in states:
        wanted = " or ".join(state.value for state in states)
        raise Conflict(
            f"the rollout of {record.key} (version {record.version}) is {record.state}, "
            f"not {wanted}",
            [{"loc": ["rollout", "state"], "msg": str(record.state)}],
        )


def step_due(record: RolloutRecord, now: datetime, by: str = AUTOMATIC) -> RolloutRecord | None:
    """The next step if the current one has been served for `step_seconds`, else None."""
    if record.state is not RolloutState.RUNNING or record.served_for(now) < record.step_seconds:
        return None
    following = record.step + 1
    if following >= len(record.steps) - 1:
        return promote(record, now, by)
    return record.after(
        TransitionAction.STEP,
        f"step {format_percent(record.steps[following])} %",
        now,
        by,
        step=following,
        step_elapsed=0.0,
        step_since=utc_format(now),
    )


def promote(record: RolloutRecord, now: datetime, by: str) -> RolloutRecord:
    """The candidate becomes the current version for every instance."""
    _require(record, RolloutState.RUNNING, RolloutState.PAUSED)
    return record.after(
        TransitionAction.PROMOTED,
        TransitionAction.PROMOTED.value,
        now,
        by,
        state=RolloutState.DONE,
        step=len(record.steps) - 1,
        step_elapsed=0.0,
        step_since=None,
    )


def pause(record: RolloutRecord, now: datetime, by: str, note: str | None = None) -> RolloutRecord:
    """Stop growing: the chosen instances keep the candidate, no step comes."""
    _require(record, RolloutState.RUNNING)
    if len(record.transitions) >= MAX_PAUSING_TRANSITIONS:
        raise Conflict(
            f"the rollout of {record.key} has been paused too often: promote or abort it"
        )
    message = TransitionAction.PAUSED.value + (f": {note}" if note else "")
    return record.after(
        TransitionAction.PAUSED,
        message,
        now,
        by,
        state=RolloutState.PAUSED,
        step_elapsed=record.served_for(now),
        step_since=None,
        reason=note[:MAX_REASON_LENGTH] if note else None,
    )


def resume(record: RolloutRecord, now: datetime, by: str) -> RolloutRecord:
    """Grow again: the current step is served for what remained of it."""
    _require(record, RolloutState.PAUSED)
    return record.after(
        TransitionAction.RESUMED,
        TransitionAction.RESUMED.value,
        now,
        by,
        state=RolloutState.RUNNING,
        step_since=utc_format(now),
        reason=None,
    )


def abort(record: RolloutRecord, now: datetime, by: str, reason: str) -> RolloutRecord:
    """Every chosen instance goes back to the version the rollout started over."""
    _require(record, RolloutState.RUNNING, RolloutState.PAUSED)
    reason = reason[:MAX_REASON_LENGTH]
    return record.after(
        TransitionAction.ABORTED,
        f"{TransitionAction.ABORTED.value}: {reason}",
        now,
        by,
        state=RolloutState.ABORTED,
        step_elapsed=record.served_for(now),
        step_since=None,
        reason=reason,
    )
