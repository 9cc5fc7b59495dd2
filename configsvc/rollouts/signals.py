"""When a rollout stops by itself: what the reports of its chosen instances say.

The fleet's reports (see `configsvc.fleet`) carry, per instance, its labels, the versions it
rejected and, from SDKs whose live helpers report their calls, the tries and failed tries
made on the version each document is at. Only instances chosen for the rollout count: the
candidate reached no other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from configsvc.rollouts.choice import Identity, is_chosen
from configsvc.store.rollout_record import RolloutRecord

DEFAULT_MIN_CALLS = 20
"""Tries the chosen instances must have made on the candidate before an error rate counts
(when `abort_on.min_calls` is not given)."""


@dataclass(frozen=True, slots=True)
class Reported:
    """One SDK instance as the fleet knows it: who it is and its report's content."""

    instance: str
    content: Mapping[str, Any]

    @property
    def identity(self) -> Identity:
        return Identity(self.instance, self.content.get("labels") or {})


@dataclass(frozen=True, slots=True)
class CandidateFleet:
    """How the chosen instances stand on a rollout's candidate."""

    chosen: int
    on_candidate: int
    rejected: list[tuple[str, str]]
    """`(instance, error)` of each chosen instance that rejected the candidate."""
    tries: int
    failures: int

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.tries if self.tries else None


def candidate_fleet(record: RolloutRecord, members: Iterable[Reported]) -> CandidateFleet:
    key, version = record.key, record.version
    chosen = on_candidate = tries = failures = 0
    rejected: list[tuple[str, str]] = []
    for member in members:
        if not is_chosen(record, member.identity):
            continue
        chosen += 1
        content = member.content
        applied = content.get("documents", {}).get(key)
        if applied is not None and applied.get("version") == version:
            on_candidate += 1
        refused = content.get("rejected", {}).get(key)
        if refused is not None and refused.get("version") == version:
            rejected.append((member.instance, str(refused.get("error", ""))))
        calls = content.get("calls", {}).get(key)
        if calls is not None and calls.get("version") == version:
            tries += int(calls.get("tries", 0))
            failures += int(calls.get("failures", 0))
    return CandidateFleet(chosen, on_candidate, rejected, tries, failures)


def abort_reason(record: RolloutRecord, members: Iterable[Reported]) -> str | None:
    """Why the rollout must abort now by its `abort_on`, or None."""
    abort_on = record.abort_on
    if abort_on.rejected is None and abort_on.error_rate is None:
        return None
    fleet = candidate_fleet(record, members)
    if abort_on.rejected is not None and len(fleet.rejected) >= abort_on.rejected:
        count = len(fleet.rejected)
        return (
            f"{count} chosen instance{'' if count == 1 else 's'} rejected version "
            f"{record.version} (first: {fleet.rejected[0][0]})"
        )
    rate = fleet.error_rate
    min_calls = abort_on.min_calls or DEFAULT_MIN_CALLS
    if (
        abort_on.error_rate is not None
        and rate is not None
        and fleet.tries >= min_calls
        and rate >= abort_on.error_rate
    ):
        return (
            f"error rate {rate:.1%} over {fleet.tries} tries on version {record.version} "
            f"(threshold {abort_on.error_rate:.1%})"
        )
    return None
