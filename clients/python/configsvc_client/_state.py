"""The applied configuration: documents, how far each namespace is known, bindings, callbacks.

Pure logic, no I/O and no awaits: the coordinator feeds it updates from any source, in any
interleaving, and it keeps these promises:

* it never goes back: a snapshot older than what is held for a namespace, or a change at
  or below a document's last seen revision, is ignored (so replays are harmless);
* a document that fails a bound model is not applied anywhere; the previous version stays;
* callbacks run once per applied version, in revision order, after the version is applied;
  the held version sent again at a newer revision (as a staged rollout does when it moves an
  instance back) calls no one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from configsvc_schemas.wire import split_key
from pydantic import BaseModel

from configsvc_client._binding import Binding, DocumentRejected, M
from configsvc_client._cache import CachedState
from configsvc_client._types import Change, Document, Revision, Snapshot, Update

log = logging.getLogger("configsvc_client")

DocumentCallback = Callable[[Document | None, Document | None], object]
"""Called with (old, new) documents; old is None when created, new is None when deleted."""

Notification = Callable[[], None]
"""Runs the callbacks of one applied version."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A version of a document that a bound model refused, and why (`reason` names field
    paths, not values); `models` are the models bound to the document then."""

    document: Document
    reason: str
    models: tuple[type[BaseModel], ...] = ()


class ConfigState:
    """Documents of the watched `namespaces` (None: whatever the source provides)."""

    def __init__(self, namespaces: Iterable[str] | None) -> None:
        self._namespaces = frozenset(namespaces) if namespaces is not None else None
        self._docs: dict[str, Document] = {}
        self._seen: dict[str, Revision] = {}
        self._through: dict[str, Revision] = {}
        self._bindings: dict[str, list[Binding[Any]]] = {}
        self._listeners: list[DocumentCallback] = []
        self._doc_errors: dict[str, str] = {}
        self._rejections: dict[str, Rejection] = {}
        self._seen_full_snapshot = False
        self.revision: Revision | None = None
        """The highest revision applied."""

    # -- queries ----------------------------------------------------------------------

    def watches(self, namespace: str) -> bool:
        return self._namespaces is None or namespace in self._namespaces

    @property
    def complete(self) -> bool:
        """True once every watched namespace is known (by a snapshot, a stream, a cache)."""
        if self._namespaces is None:
            return self._seen_full_snapshot or bool(self._through)
        return all(ns in self._through for ns in self._namespaces)

    def resume_point(self) -> Revision | None:
        """The revision through which every watched namespace is known, or None."""
        if not self.complete:
            return None
        return min(self._through.values(), default=self.revision)

    def get(self, key: str) -> Document | None:
        return self._docs.get(key)

    def documents(self) -> dict[str, Document]:
        """A copy of the applied documents by `"ns/name"`."""
        return dict(self._docs)

    def rejections(self) -> dict[str, Rejection]:
        """The documents whose newest version was refused, by `"ns/name"` (a copy)."""
        return dict(self._rejections)

    @property
    def error(self) -> str | None:
        """The most recent local rejection that a later version has not cleared."""
        return next(reversed(self._doc_errors.values()), None)

    def export(self) -> CachedState:
        """What the cache stores: applied documents and how far each namespace is known."""
        return CachedState(
            revision=self.revision or 0,
            through=dict(self._through),
            documents=tuple(self._docs.values()),
            saved_at=time.time(),
        )

    # -- subscriptions ----------------------------------------------------------------

    def bind(self, key: str, model: type[M]) -> Binding[M]:
        """A binding of `key`, holding the current version at once if it validates.

        A current version that fails `model` is reported as a later one would be: the
        binding's `error`, the client's `error` and a warning (it stays applied for the
        bindings it passed; this one holds None until a version passes)."""
        namespace, _ = split_key(key)
        if not self.watches(namespace):
            raise ValueError(f"{key}: namespace {namespace!r} is not watched by this client")
        binding = Binding(key, model)
        current = self._docs.get(key)
        if current is not None:
            try:
                binding._set(binding._validate(current), current)
            except DocumentRejected as exc:
                self._reject(key, current, str(exc), [binding])
        self._bindings.setdefault(key, []).append(binding)
        return binding

    def add_listener(self, callback: DocumentCallback) -> None:
        self._listeners.append(callback)

    # -- applying ---------------------------------------------------------------------

    def apply(self, update: Update) -> list[Notification]:
        """Apply the update's snapshot, then its changes.

        Returns one notification per applied version, in order: run them (outside any
        lock) to call the callbacks.
        """
        notes: list[Notification] = []
        if update.snapshot is not None:
            self._apply_snapshot(update.snapshot, notes)
        for change in update.changes:
            self._apply_change(change, notes)
            self._advance(change.revision)
        return notes

    def load(self, cached: CachedState) -> list[Notification]:
        """Apply a cached state, namespace by namespace, as snapshots at their own revisions."""
        notes: list[Notification] = []
        for namespace, through in sorted(cached.through.items()):
            docs = tuple(d for d in cached.documents if d.namespace == namespace)
            self._apply_snapshot(Snapshot(through, docs, (namespace,)), notes)
        if cached.revision and (self.revision is None or cached.revision > self.revision):
            self.revision = cached.revision
        return notes

    def _apply_snapshot(self, snapshot: Snapshot, notes: list[Notification]) -> None:
        namespaces = snapshot.namespaces
        if namespaces is None:
            self._seen_full_snapshot = True
            if self._namespaces is not None:
                namespaces = tuple(self._namespaces)
            else:
                known = {d.namespace for d in self._docs.values()} | set(self._through)
                namespaces = tuple(known | {d.namespace for d in snapshot.documents})
        changes: list[Change] = []
        for namespace in namespaces:
            if not self.watches(namespace):
                continue
            held = self._through.get(namespace)
            if held is not None and snapshot.revision < held:
                continue
            incoming = {d.key: d for d in snapshot.documents if d.namespace == namespace}
            for key, document in incoming.items():
                if document.revision > self._seen.get(key, -1):
                    changes.append(Change.put(document))
            for key, document in self._docs.items():
                if document.namespace == namespace and key not in incoming:
                    changes.append(Change.delete(namespace, document.name, snapshot.revision))
            for key in [k for k in self._doc_errors if k not in incoming]:
                if split_key(key)[0] == namespace:
                    self._clear_error(key)
            self._through[namespace] = max(held or 0, snapshot.revision)
        changes.sort(key=lambda c: c.revision)
        for change in changes:
            self._commit(change, notes)
        self._bump(snapshot.revision)

    def _apply_change(self, change: Change, notes: list[Notification]) -> None:
        if not self.watches(change.namespace):
            return
        held = self._through.get(change.namespace)
        if held is not None and change.revision < held:
            return
        if change.revision <= self._seen.get(change.key, -1):
            return
        self._commit(change, notes)

    def _advance(self, revision: Revision) -> None:
        """A source's in-order change at `revision`: every namespace it covers is known
        through it."""
        for namespace, held in self._through.items():
            if revision > held:
                self._through[namespace] = revision
        self._bump(revision)

    def _bump(self, revision: Revision) -> None:
        if self.revision is None or revision > self.revision:
            self.revision = revision

    def _commit(self, change: Change, notes: list[Notification]) -> None:
        key = change.key
        self._seen[key] = change.revision
        bindings = list(self._bindings.get(key, ()))
        old = self._docs.get(key)
        new = change.document if change.action == "put" else None
        if new is None and old is None:
            self._clear_error(key)
            return
        if new is not None and old is not None and old.same_version(new):
            # The held version again, at a newer revision (a rollout that ends, or a listing
            # that says so): nothing changes for anyone, and a rejected candidate is gone.
            self._docs[key] = new
            self._clear_error(key)
            for binding in bindings:
                binding._refresh(new)
            return
        values: list[Any] = []
        if new is not None:
            try:
                values = [b._validate(new) for b in bindings]
            except DocumentRejected as exc:
                self._reject(key, new, str(exc), bindings)
                return
            self._docs[key] = new
        else:
            del self._docs[key]
            values = [None] * len(bindings)
        self._clear_error(key)
        olds = [b._set(value, new) for b, value in zip(bindings, values, strict=True)]
        listeners = list(self._listeners)

        def notify() -> None:
            for binding, old_value, value in zip(bindings, olds, values, strict=True):
                binding._notify(old_value, value)
            for listener in listeners:
                try:
                    listener(old, new)
                except Exception:
                    log.exception("on_change callback failed for %s", key)

        notes.append(notify)

    def _reject(
        self, key: str, document: Document, error: str, bindings: Iterable[Binding[Any]]
    ) -> None:
        """Report a version of `key` that failed a bound model, however the binding was made:
        logged, the newest error of the client, the error of `bindings`, and a rejection for
        the fleet's reports."""
        bindings = list(bindings)
        message = f"{key} v{document.version} rejected: {error}"
        log.warning("not applying %s", message)
        self._doc_errors.pop(key, None)
        self._doc_errors[key] = message
        models = tuple(binding.model for binding in bindings)
        self._rejections[key] = Rejection(document, error, models)
        for binding in bindings:
            binding._reject(message)

    def _clear_error(self, key: str) -> None:
        self._doc_errors.pop(key, None)
        self._rejections.pop(key, None)
        for binding in self._bindings.get(key, ()):
            binding._reject(None)
