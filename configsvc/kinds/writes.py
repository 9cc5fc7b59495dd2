"""Validating a document write against its kind as stored when the write commits.

A built-in kind is part of the service: its spec is validated once, before the write. A
user kind may change on any instance at any moment, so its write carries a `KindGuard`:
the store reads the kind's record in the same transaction as the document, the spec is
validated against exactly that version, and the commit holds only if the record has not
moved since (else the write is decided again, against the new version). The commit also
touches the kind's use marker, which makes a concurrent change of the kind check its
documents again (see `configsvc.store.kinds`).
"""

from __future__ import annotations

from typing import Any

from configsvc_schemas.wire import is_valid_kind_name

from configsvc.errors import ValidationFailed
from configsvc.kinds.kind import Kind
from configsvc.kinds.registry import KindRegistry
from configsvc.store.etcd_client import put_op
from configsvc.store.records import Document, NewContent


def unknown_kind(name: str, registry: KindRegistry) -> ValidationFailed:
    return ValidationFailed(
        f"unknown kind {name[:100]!r}",
        [{"loc": ["kind"], "msg": f"known kinds: {', '.join(registry.names())}"}],
    )


class KindGuard:
    """A `WriteGuard` on a user kind's record: resolves the kind as read with the document."""

    def __init__(self, name: str, registry: KindRegistry) -> None:
        self.name = name
        self.key = registry.layout.kind(name)
        self._use_key = registry.layout.kind_use(name)
        self._registry = registry
        self._kind: Kind | None = None

    def observe(self, value: bytes | None, mod_revision: int) -> None:
        """Take the kind as read in this round of the write; 422 when it does not exist."""
        kind = self._registry.resolve(self.name, value, mod_revision)
        if kind is None or kind.deleted:
            raise unknown_kind(self.name, self._registry)
        self._kind = kind

    def ops(self) -> list[Any]:
        return [put_op(self._use_key, b"")]

    @property
    def kind(self) -> Kind:
        """The kind as read in the current round (after `observe`)."""
        if self._kind is None:
            raise RuntimeError("the kind is read with the document, before the write is built")
        return self._kind


class DocumentWrite:
    """What one write of a document needs of its kind: what it depends on in the store and
    how it turns the sent spec into the stored one."""

    def __init__(self, kind_name: str, spec: Any, registry: KindRegistry) -> None:
        self.spec = spec
        builtin = registry.builtin(kind_name)
        self.guard: KindGuard | None = None
        self._builtin = builtin
        if builtin is not None:
            self.spec = builtin.validate(spec)  # 422 before the store is read
        elif is_valid_kind_name(kind_name):
            self.guard = KindGuard(kind_name, registry)
        else:
            raise unknown_kind(kind_name, registry)

    @property
    def kind(self) -> Kind:
        if self._builtin is not None:
            return self._builtin
        assert self.guard is not None
        return self.guard.kind

    def content(self, current: Document | None, message: str | None) -> NewContent:
        """The content to store over `current`: secrets sent as `****` restored from it,
        validated by the kind as read in this round."""
        kind = self.kind
        stored = current.spec if current is not None and current.kind == kind.name else None
        if self._builtin is not None:
            return NewContent(kind.name, kind.restore_masked(self.spec, stored), message)
        return NewContent(kind.name, kind.admit(self.spec, stored), message)
