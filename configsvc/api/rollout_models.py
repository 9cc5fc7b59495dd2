"""The bodies and answers of `/v1/configs/{ns}/{name}/rollouts` (see `api.rollouts`)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from configsvc_schemas.wire import MAX_FLEET_INSTANCES, label_problems
from pydantic import BaseModel, ConfigDict, Field, field_validator

from configsvc.api.models import DOCUMENT_EXAMPLE, Answer
from configsvc.store.rollout_record import LAST_PERCENT, MAX_STEPS

MAX_MESSAGE_LENGTH = 1000
MAX_REASON_LENGTH = 500
MAX_STEP_SECONDS = 30 * 24 * 3600.0
"""A step lasts at most 30 days."""
MAX_MIN_CALLS = 10**9

Percent = Annotated[float, Field(gt=0, le=LAST_PERCENT)]


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(
        default_factory=dict, description="instances whose labels include all of these"
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        problems = label_problems(labels)
        if problems:
            raise ValueError("; ".join(problems))
        return labels


class AbortOnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rejected: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FLEET_INSTANCES,
        description="abort once this many chosen instances rejected the candidate",
    )
    error_rate: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="abort once failed tries / tries of the chosen instances' live helpers on "
        "the candidate reach this (after `min_calls` tries)",
    )
    min_calls: int | None = Field(default=None, ge=1, le=MAX_MIN_CALLS)


class RolloutIn(BaseModel):
    """The body that starts a rollout: the candidate (as a PUT's body) and its plan."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "RateLimits",
                    "spec": {"limits": {"chat": {"requests_per_second": 8, "burst": 16}}},
                    "message": "raise the chat limit",
                    "steps": [10, 50, 100],
                    "step_seconds": 300,
                    "match": {"labels": {"region": "eu"}},
                    "abort_on": {"rejected": 1},
                }
            ]
        },
    )

    namespace: str | None = None
    name: str | None = None
    kind: str
    spec: dict[str, Any]
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_LENGTH)
    steps: list[Percent] = Field(
        min_length=2,
        max_length=MAX_STEPS,
        description="percentages of the matching instances, increasing, the last 100 "
        "(reaching it promotes the candidate for every instance)",
    )
    step_seconds: float = Field(gt=0, le=MAX_STEP_SECONDS, description="how long each step lasts")
    match: MatchIn = Field(default_factory=MatchIn)
    abort_on: AbortOnIn = Field(default_factory=AbortOnIn)

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
            raise ValueError("steps must increase")
        if steps[-1] != LAST_PERCENT:
            raise ValueError("the last step must be 100 (it promotes the candidate)")
        return steps


class RolloutActionIn(BaseModel):
    """The optional body of pause and abort (and of promote and resume, which take none)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None,
        max_length=MAX_REASON_LENGTH,
        description="kept in the history: `aborted: <reason>`, `paused: <reason>`",
    )


class TransitionOut(Answer):
    action: Literal["started", "step", "paused", "resumed", "promoted", "aborted"]
    message: str = Field(description="as in the history: `step 50 %`, `aborted: <reason>`, …")
    at: str
    by: str = Field(description="a token's name, or `configsvc:rollouts` for the service's own")
    state: Literal["running", "paused", "done", "aborted"]
    percent: float
    revision: int | None = Field(description="the store revision written; null on a dry run")


class RolloutRejectionOut(Answer):
    instance: str
    error: str


class RolloutFleetOut(Answer):
    instances: int = Field(description="instances reporting the document")
    chosen: int = Field(description="of them, those the rollout chooses now")
    on_candidate: int = Field(description="chosen instances that applied the candidate")
    on_version: dict[str, int] = Field(description="version -> instances that applied it")
    rejected: list[RolloutRejectionOut] = Field(description="chosen ones that rejected it")
    tries: int = Field(description="live helpers' tries on the candidate (chosen instances)")
    failures: int
    error_rate: float | None = Field(default=None, description="failures / tries (null: none)")


ROLLOUT_EXAMPLE: dict[str, Any] = {
    "namespace": "prod",
    "name": "chat-models",
    "id": "3f9a0c1b2d4e5f60",
    "state": "running",
    "step": 2,
    "percent": 50,
    "steps": [10, 50, 100],
    "step_seconds": 300,
    "version": 8,
    "base_version": 7,
    "kind": "ModelEndpoints",
    "message": DOCUMENT_EXAMPLE["message"],
    "match": {"labels": {"region": "eu"}},
    "abort_on": {"rejected": 1},
    "started_at": "2026-11-22T01:02:03.456Z",
    "started_by": "deploy-bot",
    "updated_at": "2026-11-22T01:07:03.512Z",
    "revision": 1301,
    "next_step_at": "2026-11-22T01:12:03.512Z",
    "reason": None,
    "transitions": [
        {
            "action": "started",
            "message": "started",
            "at": "2026-11-22T01:02:03.456Z",
            "by": "deploy-bot",
            "state": "running",
            "percent": 10,
            "revision": 1290,
        },
        {
            "action": "step",
            "message": "step 50 %",
            "at": "2026-11-22T01:07:03.512Z",
            "by": "configsvc:rollouts",
            "state": "running",
            "percent": 50,
            "revision": 1301,
        },
    ],
    "fleet": {
        "instances": 40,
        "chosen": 19,
        "on_candidate": 19,
        "on_version": {"8": 19, "7": 21},
        "rejected": [],
        "tries": 0,
        "failures": 0,
        "error_rate": None,
    },
}


class RolloutOut(Answer):
    """A document's latest rollout, with how the fleet stands on it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ROLLOUT_EXAMPLE]})

    namespace: str
    name: str
    id: str = Field(description="seeds the choice of instances")
    state: Literal["running", "paused", "done", "aborted"]
    step: int = Field(description="the step being served, from 1")
    percent: float = Field(description="the step's percent; 100 once done; reached if aborted")
    steps: list[float]
    step_seconds: float
    version: int = Field(description="the candidate's version number")
    base_version: int = Field(description="the version it started over")
    kind: str
    message: str | None
    match: MatchIn
    abort_on: dict[str, Any]
    started_at: str
    started_by: str
    updated_at: str = Field(description="the newest transition's time")
    revision: int | None = Field(
        description="the store revision of the newest transition; null on a dry run"
    )
    dry_run: bool | None = Field(default=None, description="true: checked, nothing started")
    next_step_at: str | None = Field(
        default=None, description="when the next step is due (running only)"
    )
    reason: str | None = Field(
        default=None, description="why it is paused or was aborted (null: none given)"
    )
    transitions: list[TransitionOut]
    fleet: RolloutFleetOut
