"""Staged rollouts in etcd: starting one and each later transition, one transaction each.

Starting reads the document, its version counter and latest rollout (and its kind's record,
for a user kind) at one revision, and commits, if none of them moved: the candidate's spec
under the next version's spec key (sealed like every spec), the candidate's history record,
the version counter (the number is reserved: versions never repeat), the rollout record and
an audit record. Moving the counter makes a concurrent plain write start over and find the
rollout (409).

A transition reads the rollout record, lets `decide` make the next one and commits it if the
record did not move meanwhile (so of several service instances deciding the same step, one
wins), with the candidate's history record (the transitions are its history rows) and an
audit record. It also writes again, with the same bytes, the spec its watchers need to make
their events at the transition's revision: a step the candidate's, an abort the base
version's. A promotion writes the document key (the candidate becomes the current version),
the version counter and the namespace marker, like a put.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from configsvc.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
)
from configsvc.store.audit import AuditRecord, audit_op, audit_witness
from configsvc.store.etcd_client import delete_op, mod_revision_is, put_op, range_op
from configsvc.store.etcd_store import (
    MAX_WRITE_ATTEMPTS,
    MAX_WRITE_BYTES,
    RETRY_PAUSE_MAX,
    EtcdConfigStore,
)
from configsvc.store.records import Action, Document, HistoryRecord, NewContent, utc_format
from configsvc.store.rollout_reads import RolloutReads
from configsvc.store.rollout_record import (
    AbortOn,
    Base,
    RolloutRecord,
    RolloutState,
    TransitionAction,
)
from configsvc.store.write_state import WriteGuard

ROLLOUT_ID_BYTES = 8
"""Random bytes of a rollout's id (it seeds the choice of instances: see `choice`)."""

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """How a rollout grows and when it stops by itself."""

    steps: tuple[float, ...]
    step_seconds: float
    match_labels: Mapping[str, str]
    abort_on: AbortOn


class CandidateCheck(Protocol):
    """Validates a candidate against its kind as stored when a promotion commits: `guard`
    (a user kind's record, or None) is read with the rollout and shown what was read, then
    `check(spec)` raises `ValidationFailed` when the candidate no longer fits."""

    @property
    def guard(self) -> WriteGuard | None: ...

    def check(self, spec: dict[str, Any]) -> None: ...


Decide = Callable[[RolloutRecord, datetime], RolloutRecord | None]
"""The next record (`RolloutRecord.after`) of the one read, at the given time; None: nothing
to do; raises (e.g. `Conflict`) to refuse."""


class RolloutStore(RolloutReads):
    """The rollouts of the documents of `documents` (the same etcd, prefix and codec)."""

    def __init__(self, documents: EtcdConfigStore, clock: Clock = wall_clock) -> None:
        super().__init__(documents.kv, documents.layout, documents.codec)
        self.documents = documents
        self.clock = clock

    # ---- starting ----------------------------------------------------------------------

    async def start(
        self,
        ns: str,
        name: str,
        build: Callable[[Document], NewContent],
        plan: RolloutPlan,
        *,
        author: str,
        origin: str | None = None,
        depends_on: WriteGuard | None = None,
        if_match: int | None = None,
        dry_run: bool = False,
    ) -> RolloutRecord:
        """Start a rollout of what `build` makes of the current document (validated inside
        the compare-and-set loop, like a put). 404 without a document, 409 while another
        rollout is active or when the candidate equals the current version, 412 when the
        document is not at revision `if_match`. A `dry_run` checks all that and answers the
        rollout that would start (revision 0), writing nothing."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = await self.documents.read_current(ns, name, depends_on)
            document = current.existing(
                f"no document {ns}/{name}: a rollout changes an existing one"
            )
            current.refuse_during_rollout(ns, name)
            current.require_revision(ns, name, if_match)
            content = build(document)
            if content.kind == document.kind and content.spec == document.spec:
                raise Conflict(
                    f"the candidate equals version {document.version} of {ns}/{name}: "
                    "nothing to roll out",
                    [{"loc": ["spec"], "msg": "equal to the current version"}],
                )
            at = self.clock()
            record = _new_record(ns, name, current.last_version + 1, content, document, plan)
            record = record.after(
                TransitionAction.STARTED,
                TransitionAction.STARTED.value,
                at,
                author,
                step_since=utc_format(at),
                created_at=utc_format(at),
                created_by=author,
            )
            spec = self.codec.encode(ns, name, content.kind, content.spec)
            history = HistoryRecord(
                namespace=ns,
                name=name,
                version=record.version,
                revision=0,
                action=Action.ROLLOUT,
                updated_at=record.created_at,
                updated_by=author,
                message=content.message,
                kind=content.kind,
                spec=content.spec,
                spec_bytes=len(spec),
                rollout=record.history_trail(),
            )
            ops = [
                put_op(self.layout.history_spec(ns, name, record.version), spec),
                put_op(self.layout.history(ns, name, record.version), history.stored_value()),
                put_op(self.layout.version(ns, name), str(record.version).encode()),
                put_op(self.layout.rollout(ns, name), record.stored_value()),
                audit_op(self.layout, _audit(record, origin, plan_details(record))),
                *self._trim_ops(ns, name, document.version, record.version),
            ]
            guards = [
                mod_revision_is(self.layout.version(ns, name), current.guard_revision),
                mod_revision_is(self.layout.rollout(ns, name), current.rollout_revision),
            ]
            if depends_on is not None:
                guards.append(mod_revision_is(depends_on.key, current.dependency_revision))
                ops += depends_on.ops()
            if dry_run:
                _check_size(ops)
                return record
            revision = await self._commit(guards, ops)
            if revision is not None:
                return RolloutRecord.from_stored(ns, name, record.stored_value(), revision)
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"{ns}/{name}: too many concurrent writers, try again")

    def _trim_ops(self, ns: str, name: str, current: int, candidate: int) -> list[Any]:
        """Trimming past the history limit that never removes the current version."""
        oldest_kept = min(current, candidate - self.documents.history_limit + 1)
        if oldest_kept <= 1:
            return []
        layout = self.layout
        return [
            delete_op(key_of(ns, name, 0), key_of(ns, name, oldest_kept))
            for key_of in (layout.history, layout.history_spec)
        ]

    # ---- transitions -------------------------------------------------------------------

    async def transition(
        self,
        ns: str,
        name: str,
        decide: Decide,
        *,
        author: str,
        origin: str | None = None,
        expected_revision: int | None = None,
        check: CandidateCheck | None = None,
    ) -> RolloutRecord | None:
        """Commit what `decide` makes of the document's latest rollout.

        With `expected_revision` (a scheduler acting on what it saw) nothing is done, and
        None returned, once the record has moved past that revision; otherwise a lost race
        is decided again on the new record. `check` validates the candidate of a promotion.
        404 when the document never had a rollout.
        """
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            guard = check.guard if check is not None else None
            read = await self._read(ns, name, guard)
            record = read.record
            if expected_revision is not None and record.revision != expected_revision:
                return None
            new = decide(record, self.clock())
            if new is None:
                return None
            ops = await self._transition_ops(record, new, read, check, author)
            ops.append(audit_op(self.layout, _audit(new, origin)))
            guards = [
                mod_revision_is(self.layout.rollout(ns, name), record.revision),
                mod_revision_is(self.layout.version(ns, name), read.version_revision),
            ]
            if guard is not None:
                guards.append(mod_revision_is(guard.key, read.guard_revision))
                ops += guard.ops()
            revision = await self._commit(guards, ops)
            if revision is not None:
                return RolloutRecord.from_stored(ns, name, new.stored_value(), revision)
            if expected_revision is not None:
                return None
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"{ns}/{name}: too many concurrent writers, try again")

    async def _read(self, ns: str, name: str, guard: WriteGuard | None) -> _Read:
        ops = [range_op(self.layout.rollout(ns, name)), range_op(self.layout.version(ns, name))]
        if guard is not None:
            ops.append(range_op(guard.key))
        response = await self.kv.txn([], ops)
        kvs = [op.response_range.kvs for op in response.responses]
        if not kvs[0]:
            raise NotFound(f"{ns}/{name} never had a rollout")
        record = RolloutRecord.from_stored(ns, name, kvs[0][0].value, kvs[0][0].mod_revision)
        guard_revision = 0
        if guard is not None:
            guard_revision = kvs[2][0].mod_revision if kvs[2] else 0
            guard.observe(kvs[2][0].value if kvs[2] else None, guard_revision)
        version_revision = kvs[1][0].mod_revision if kvs[1] else 0
        return _Read(record, version_revision, guard_revision, response.header.revision)

    async def _transition_ops(
        self,
        record: RolloutRecord,
        new: RolloutRecord,
        read: _Read,
        check: CandidateCheck | None,
        author: str,
    ) -> list[Any]:
        """The spec its watchers need (first: they see it before the record), the
        candidate's history record and the rollout record; for a promotion, the document
        key, the version counter and the namespace marker."""
        layout, ns, name = self.layout, record.namespace, record.name
        action = new.last.action
        spec_version = record.base.version if action.moves_out else record.version
        history_key = layout.history(ns, name, record.version)
        spec_key = layout.history_spec(ns, name, spec_version)
        response = await self.kv.txn([], [range_op(history_key), range_op(spec_key)])
        history_kvs, spec_kvs = (op.response_range.kvs for op in response.responses)
        ops = []
        if action.moves_in or action.moves_out or action is TransitionAction.PROMOTED:
            if not spec_kvs:
                raise NotFound(f"{record.key}: version {spec_version} has no spec")
            ops.append(put_op(spec_key, spec_kvs[0].value))
        if history_kvs:  # trimmed only past the history limit
            stored = HistoryRecord.from_stored(ns, name, history_kvs[0].value, 0)
            trail = dataclasses.replace(stored, rollout=new.history_trail())
            ops.append(put_op(history_key, trail.stored_value()))
        ops.append(put_op(layout.rollout(ns, name), new.stored_value()))
        if action is TransitionAction.PROMOTED:
            if check is not None:
                check.check(self.codec.decode(ns, name, spec_kvs[0].value))
            current = Document(
                namespace=ns,
                name=name,
                kind=record.kind,
                spec={},
                version=record.version,
                revision=0,
                updated_at=new.last.at,
                updated_by=author,
                message=record.message,
                action=Action.ROLLOUT,
            )
            ops += [
                put_op(layout.doc(ns, name), current.stored_value()),
                put_op(layout.version(ns, name), str(record.version).encode()),
                put_op(layout.namespace(ns), b""),
            ]
        return ops

    async def _commit(self, guards: list[Any], ops: list[Any]) -> int | None:
        _check_size(ops)
        response = await self.kv.txn(guards, ops, witness=audit_witness(self.layout, ops))
        if not response.succeeded:
            return None
        if response.responses:  # (not a write etcd applied while answering NOSPACE)
            self.kv.space.writable()
        revision: int = response.header.revision
        return revision


@dataclass(frozen=True, slots=True)
class _Read:
    record: RolloutRecord
    version_revision: int
    guard_revision: int
    revision: int


def _new_record(
    ns: str, name: str, version: int, content: NewContent, document: Document, plan: RolloutPlan
) -> RolloutRecord:
    return RolloutRecord(
        namespace=ns,
        name=name,
        id=secrets.token_hex(ROLLOUT_ID_BYTES),
        version=version,
        kind=content.kind,
        message=content.message,
        created_at="",
        created_by="",
        base=Base(
            version=document.version,
            kind=document.kind,
            revision=document.revision,
            updated_at=document.updated_at,
            updated_by=document.updated_by,
            message=document.message,
        ),
        steps=plan.steps,
        step_seconds=plan.step_seconds,
        match_labels=dict(plan.match_labels),
        abort_on=plan.abort_on,
        state=RolloutState.RUNNING,
        step=0,
        step_elapsed=0.0,
        step_since=None,
        reason=None,
    )


def plan_details(record: RolloutRecord) -> dict[str, Any]:
    """What the audit log keeps of a rollout's plan."""
    return {
        "kind": record.kind,
        "steps": list(record.steps),
        "step_seconds": record.step_seconds,
        "match": {"labels": dict(record.match_labels)},
        "abort_on": record.abort_on.to_json(),
    }


def _audit(
    record: RolloutRecord, origin: str | None, details: dict[str, Any] | None = None
) -> AuditRecord:
    transition = record.last
    return AuditRecord(
        action=f"rollout.{transition.action.value}",
        target=record.key,
        by=transition.by,
        origin=origin,
        at=transition.at,
        namespace=record.namespace,
        version=record.version,
        message=transition.message,
        details={"rollout": record.id, "percent": transition.percent, **(details or {})},
    )


def _check_size(ops: list[Any]) -> None:
    """413 for a write over etcd's request limit (as configured for this service)."""
    size = sum(op.ByteSize() for op in ops)
    if size > MAX_WRITE_BYTES:
        raise PayloadTooLarge(f"the write is {size} bytes, over the {MAX_WRITE_BYTES} limit")
