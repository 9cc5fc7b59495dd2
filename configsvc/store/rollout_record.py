"""A staged rollout as stored: one record per document (its latest rollout), pure values.

A rollout offers a candidate version of a document to a share of the SDK instances that
grows by steps, until it is promoted (the candidate becomes the current version for every
instance) or aborted (every instance is back on the current version). The record says
everything an instance needs to serve it: the candidate (its version; its spec is the one
stored under that version's spec key), the version it was started over (`base`), which
instances it is for (`match_labels`, the steps and the current `step`), its timing, and the
transitions so far, each with the state and percent it left behind, so that whoever reads
one transition knows which instances it moved.

Invariants:

* `state` is `running` or `paused` (active) until it is `done` or `aborted` (final); a final
  record never changes again;
* `step` only grows, and `percent` with it: the instances chosen at one moment stay chosen
  for as long as the rollout is active;
* the last step is 100: reaching it promotes the candidate for every instance.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from configsvc.store.records import dumps, utc_format

MAX_STEPS = 20
"""Steps one rollout may have."""
MAX_TRANSITIONS = 64
"""Transitions one rollout may have (steps, pauses and resumes, its end)."""
LAST_PERCENT = 100.0
"""The last step: every instance."""


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        """Running or paused: the candidate is being served, plain writes are refused."""
        return self in (RolloutState.RUNNING, RolloutState.PAUSED)


class TransitionAction(enum.StrEnum):
    STARTED = "started"
    STEP = "step"
    PAUSED = "paused"
    RESUMED = "resumed"
    PROMOTED = "promoted"
    ABORTED = "aborted"

    @property
    def moves_in(self) -> bool:
        """Instances may start getting the candidate (the chosen set grows)."""
        return self in (TransitionAction.STARTED, TransitionAction.STEP)

    @property
    def moves_out(self) -> bool:
        """Instances on the candidate go back to the base version."""
        return self is TransitionAction.ABORTED


def format_percent(percent: float) -> str:
    """`50`, `12.5`: a percentage as people write it."""
    return f"{percent:g}"


@dataclass(frozen=True, slots=True)
class AbortOn:
    """When a rollout aborts by itself, from the reports of its chosen instances."""

    rejected: int | None = None
    """This many chosen instances rejected the candidate."""
    error_rate: float | None = None
    """Failed tries / tries of the live helpers on the candidate, over the chosen instances,
    once they made `min_calls` tries."""
    min_calls: int | None = None

    def to_json(self) -> dict[str, Any]:
        found = {"rejected": self.rejected, "error_rate": self.error_rate}
        if self.error_rate is not None:
            found["min_calls"] = self.min_calls
        return {key: value for key, value in found.items() if value is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AbortOn:
        return cls(data.get("rejected"), data.get("error_rate"), data.get("min_calls"))


@dataclass(frozen=True, slots=True)
class Base:
    """The document's current version when the rollout started (it cannot change while
    the rollout is active): what instances that leave the candidate go back to."""

    version: int
    kind: str
    revision: int
    updated_at: str
    updated_by: str
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Base:
        return cls(
            version=data["version"],
            kind=data["kind"],
            revision=data["revision"],
            updated_at=data["updated_at"],
            updated_by=data["updated_by"],
            message=data.get("message"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a rollout: what happened, who did it, and where it left the rollout.

    `revision` is the store revision that wrote it; the newest transition is stored with 0
    (its revision is the record's own) and filled in when read.
    """

    action: TransitionAction
    message: str
    at: str
    by: str
    state: RolloutState
    percent: float
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "message": self.message,
            "at": self.at,
            "by": self.by,
            "state": self.state.value,
            "percent": self.percent,
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transition:
        return cls(
            action=TransitionAction(data["action"]),
            message=data["message"],
            at=data["at"],
            by=data["by"],
            state=RolloutState(data["state"]),
            percent=float(data["percent"]),
            revision=int(data.get("revision") or 0),
        )


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """A document's latest rollout (see the module docstring)."""

    namespace: str
    name: str
    id: str
    version: int
    """The candidate's version number (reserved when the rollout started)."""
    kind: str
    message: str | None
    created_at: str
    created_by: str
    base: Base
    steps: tuple[float, ...]
    step_seconds: float
    match_labels: Mapping[str, str]
    abort_on: AbortOn
    state: RolloutState
    step: int
    """The index in `steps` of the step being served."""
    step_elapsed: float
    """Seconds the current step was served before `step_since` (time before a pause)."""
    step_since: str | None
    """When the current step last started running; None unless running."""
    reason: str | None
    transitions: tuple[Transition, ...] = field(default=())
    revision: int = 0
    """The store revision of this record (that of its newest transition)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def percent(self) -> float:
        """The share (of the matching instances) chosen now: 100 once done."""
        if self.state is RolloutState.DONE:
            return LAST_PERCENT
        return self.steps[self.step]

    @property
    def previous(self) -> Transition | None:
        """The transition before the newest one (what the newest one changed)."""
        return self.transitions[-2] if len(self.transitions) > 1 else None

    @property
    def last(self) -> Transition:
        return self.transitions[-1]

    def next_step_at(self) -> datetime | None:
        """When the next step is due (None unless running)."""
        if self.state is not RolloutState.RUNNING or self.step_since is None:
            return None
        remaining = max(0.0, self.step_seconds - self.step_elapsed)
        return datetime.fromisoformat(self.step_since) + timedelta(seconds=remaining)

    def served_for(self, now: datetime) -> float:
        """Seconds the current step has been served (pauses excluded)."""
        if self.step_since is None:
            return self.step_elapsed
        return self.step_elapsed + (now - datetime.fromisoformat(self.step_since)).total_seconds()

    # -- transitions ----------------------------------------------------------------------

    def after(
        self, action: TransitionAction, message: str, at: datetime, by: str, **changes: Any
    ) -> RolloutRecord:
        """This record changed by `changes` (state, step, …), with the transition appended."""
        changed = replace(self, **changes)
        transition = Transition(
            action=action,
            message=message,
            at=utc_format(at),
            by=by,
            state=changed.state,
            percent=changed.percent,
        )
        filled = self.transitions
        if filled and filled[-1].revision == 0:
            filled = (*filled[:-1], replace(filled[-1], revision=self.revision))
        return replace(changed, transitions=(*filled, transition), revision=0)

    # -- storage ----------------------------------------------------------------------------

    def stored_value(self) -> bytes:
        return dumps(
            {
                "id": self.id,
                "version": self.version,
                "kind": self.kind,
                "message": self.message,
                "created_at": self.created_at,
                "created_by": self.created_by,
                "base": self.base.to_json(),
                "steps": list(self.steps),
                "step_seconds": self.step_seconds,
                "match": {"labels": dict(self.match_labels)},
                "abort_on": self.abort_on.to_json(),
                "state": self.state.value,
                "step": self.step,
                "step_elapsed": self.step_elapsed,
                "step_since": self.step_since,
                "reason": self.reason,
                "transitions": [t.to_json() for t in self.transitions],
            }
        )

    @classmethod
    def from_stored(cls, ns: str, name: str, value: bytes, revision: int) -> RolloutRecord:
        data = json.loads(value)
        transitions = [Transition.from_json(t) for t in data["transitions"]]
        if transitions and transitions[-1].revision == 0:
            transitions[-1] = replace(transitions[-1], revision=revision)
        return cls(
            namespace=ns,
            name=name,
            id=data["id"],
            version=data["version"],
            kind=data["kind"],
            message=data.get("message"),
            created_at=data["created_at"],
            created_by=data["created_by"],
            base=Base.from_json(data["base"]),
            steps=tuple(float(s) for s in data["steps"]),
            step_seconds=float(data["step_seconds"]),
            match_labels=dict(data.get("match", {}).get("labels", {})),
            abort_on=AbortOn.from_json(data.get("abort_on") or {}),
            state=RolloutState(data["state"]),
            step=int(data["step"]),
            step_elapsed=float(data["step_elapsed"]),
            step_since=data.get("step_since"),
            reason=data.get("reason"),
            transitions=tuple(transitions),
            revision=revision,
        )

    def history_trail(self) -> dict[str, Any]:
        """What the candidate version's history record keeps of the rollout: its id, state
        and transitions (the rows `history` lists)."""
        return {
            "id": self.id,
            "state": self.state.value,
            "transitions": [t.to_json() for t in self.transitions],
        }


def stored_state(value: bytes) -> RolloutState:
    """The state of a stored record, read without parsing the rest of it into values."""
    return RolloutState(json.loads(value)["state"])
