"""Validating a candidate when it is promoted: against its kind as stored at that moment.

A candidate was validated when its rollout started; a user kind may change meanwhile (its
compatibility check looks at current documents, not at candidates). A promotion, by hand or
at the last step, validates the candidate again, against a built-in kind at once, or
against a user kind's record as read with the rollout and unchanged when the promotion
commits (as a rollback does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from configsvc.kinds.kind import Kind
from configsvc.kinds.registry import KindRegistry
from configsvc.kinds.writes import KindGuard
from configsvc.store.rollout_record import RolloutRecord


class PromotionCheck:
    """A `CandidateCheck` for the candidate of `record`."""

    def __init__(self, record: RolloutRecord, registry: KindRegistry) -> None:
        self._builtin = registry.builtin(record.kind)
        self._guard = None if self._builtin is not None else KindGuard(record.kind, registry)

    @property
    def guard(self) -> KindGuard | None:
        return self._guard

    def check(self, spec: dict[str, Any]) -> None:
        """Raise `ValidationFailed` unless `spec` fits the kind (after `guard` observed it)."""
        kind: Kind | None = self._builtin
        if kind is None:
            assert self._guard is not None
            kind = self._guard.kind
        kind.validate(spec)


def promotion_check(registry: KindRegistry) -> Callable[[RolloutRecord], PromotionCheck]:
    """`Checks` for the scheduler: the promotion check of each rollout."""

    def make(record: RolloutRecord) -> PromotionCheck:
        return PromotionCheck(record, registry)

    return make
