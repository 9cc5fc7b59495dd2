"""What a document write works with: the state it read, and what else it depends on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from configsvc.errors import Conflict, NotFound, PreconditionFailed
from configsvc.store.records import Document
from configsvc.store.rollout_record import RolloutRecord

ANY_REVISION = -1
"""`if_match` value of `If-Match: *`: the document must exist, at any revision."""


class WriteGuard(Protocol):
    """Another key a document write depends on (its kind): read in the same transaction as
    the document and shown to `observe` before `build` runs (which may raise); the commit
    holds only if that key has not changed since, and carries `ops()` along."""

    @property
    def key(self) -> bytes: ...

    def observe(self, value: bytes | None, mod_revision: int) -> None: ...

    def ops(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class CurrentState:
    """A document's state read at one revision, as a write needs it."""

    document: Document | None
    last_version: int
    guard_revision: int
    dependency_revision: int = 0
    rollout: RolloutRecord | None = None
    """The document's latest rollout, in any state."""
    rollout_revision: int = 0

    def refuse_during_rollout(self, ns: str, name: str) -> None:
        """409 while a rollout of the document is running or paused."""
        rollout = self.rollout
        if rollout is not None and rollout.state.active:
            raise Conflict(
                f"{ns}/{name} has a {rollout.state} rollout of version {rollout.version}: "
                "promote or abort it first",
                [{"loc": ["rollout"], "msg": f"{rollout.state} rollout {rollout.id}"}],
            )

    def existing(self, missing: str) -> Document:
        """The document; 404 saying `missing` when there is none."""
        if self.document is None:
            raise NotFound(missing)
        return self.document

    def require_revision(self, ns: str, name: str, if_match: int | None) -> None:
        """412 unless the document is at revision `if_match` (`ANY_REVISION`: exists at
        all; None: no precondition)."""
        document = self.document
        if if_match is None or (
            document is not None and if_match in (ANY_REVISION, document.revision)
        ):
            return
        at = document.revision if document is not None else "none (absent)"
        raise PreconditionFailed(f"{ns}/{name} is at revision {at}, not {if_match}")
