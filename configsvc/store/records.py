"""What the store keeps and returns: documents, history records, tokens, write results."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T01:02:03.456Z`."""
    return utc_format(datetime.now(UTC))


def utc_format(moment: datetime) -> str:
    """`moment` (aware) as RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: Any) -> bytes:
    """Compact, key-sorted JSON: equal values give equal bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class Action(enum.StrEnum):
    PUT = "put"
    DELETE = "delete"
    ROLLBACK = "rollback"
    ROLLOUT = "rollout"
    """The candidate version of a staged rollout (see `rollout_record`)."""


def stored_action(data: dict[str, Any]) -> Action:
    """The action recorded in stored metadata; `put` for keys written before it was kept."""
    return Action(data.get("action") or Action.PUT)


@dataclass(frozen=True, slots=True)
class DocumentHead:
    """A document key as read: the metadata of the current version.

    The spec of each version is stored once, under its history spec key
    (`KeyLayout.history_spec`); the document key holds only metadata. Keys written by
    releases before that layout also hold the spec (`legacy_spec`).
    """

    namespace: str
    name: str
    kind: str
    version: int
    revision: int
    updated_at: str
    updated_by: str
    message: str | None
    legacy_spec: dict[str, Any] | None = None
    action: Action = Action.PUT
    rolled_back_to: int | None = None

    @classmethod
    def from_stored(cls, ns: str, name: str, value: bytes, revision: int) -> DocumentHead:
        data = json.loads(value)
        return cls(
            namespace=ns,
            name=name,
            kind=data["kind"],
            version=data["version"],
            revision=revision,
            updated_at=data["updated_at"],
            updated_by=data["updated_by"],
            message=data.get("message"),
            legacy_spec=data.get("spec"),
            action=stored_action(data),
            rolled_back_to=data.get("rolled_back_to"),
        )

    def document(self, spec: dict[str, Any]) -> Document:
        """The whole document, with `spec` (the spec of this version)."""
        return Document(
            namespace=self.namespace,
            name=self.name,
            kind=self.kind,
            spec=spec,
            version=self.version,
            revision=self.revision,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
            message=self.message,
            action=self.action,
            rolled_back_to=self.rolled_back_to,
        )


@dataclass(frozen=True, slots=True)
class Document:
    """A config document as stored, with the metadata the service adds.

    `action` is what wrote this version: `put`, `rollback` (then `rolled_back_to` is the
    version whose spec it restored), or `rollout` (a staged rollout's promotion).
    """

    namespace: str
    name: str
    kind: str
    spec: dict[str, Any]
    version: int
    revision: int
    updated_at: str
    updated_by: str
    message: str | None = None
    action: Action = Action.PUT
    rolled_back_to: int | None = None
    rollout: str | None = None
    """The id of the rollout whose candidate this is, as served to the instances chosen for
    it (never stored with the document)."""

    def stored_value(self) -> bytes:
        """The etcd value of the document key: its metadata only (the revision is the key's
        mod_revision; the spec is stored once, under the version's history spec key)."""
        return dumps(
            {
                "kind": self.kind,
                "version": self.version,
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
                "message": self.message,
                "action": self.action.value,
                **_rollback_target(self.rolled_back_to),
            }
        )

    def to_json(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """The wire form; `spec` replaces the stored spec (e.g. with secrets masked)."""
        wire = {
            "namespace": self.namespace,
            "name": self.name,
            "kind": self.kind,
            "spec": self.spec if spec is None else spec,
            "message": self.message,
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "action": self.action.value,
            **_rollback_target(self.rolled_back_to),
        }
        if self.rollout is not None:
            wire["rollout"] = self.rollout
        return wire


def _rollback_target(version: int | None) -> dict[str, int]:
    """`rolled_back_to` of a rollback's metadata; nothing for other actions."""
    return {} if version is None else {"rolled_back_to": version}


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One version of a document: a put, a rollback (with the spec) or a delete (without).

    `kind` of a delete is the kind of the document it deleted.
    """

    namespace: str
    name: str
    version: int
    revision: int
    action: Action
    updated_at: str
    updated_by: str
    message: str | None
    kind: str | None
    spec: dict[str, Any] | None
    spec_bytes: int | None = None
    """Size of the version's stored spec (0 for a delete; None in records of releases that
    did not count it)."""
    rolled_back_to: int | None = None
    """For a rollback: the version whose spec it restored (None in older records)."""
    rollout: dict[str, Any] | None = None
    """Of a rollout's candidate version: the rollout's id, state and transitions (see
    `RolloutRecord.history_trail`); its top-level fields are the candidate's own."""

    def stored_value(self) -> bytes:
        value: dict[str, Any] = {
            "version": self.version,
            "action": self.action.value,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "message": self.message,
            "kind": self.kind,
            "bytes": self.spec_bytes,
            **_rollback_target(self.rolled_back_to),
        }
        if self.rollout is not None:
            value["rollout"] = self.rollout
        return dumps(value)

    @property
    def pending_candidate(self) -> bool:
        """A rollout's candidate that never became the current version (not promoted)."""
        return self.action is Action.ROLLOUT and (self.rollout or {}).get("state") != "done"

    @classmethod
    def from_stored(cls, ns: str, name: str, value: bytes, revision: int) -> HistoryRecord:
        """The record from its metadata value; its spec is stored apart and left None here."""
        data = json.loads(value)
        return cls(
            namespace=ns,
            name=name,
            version=data["version"],
            revision=revision,
            action=Action(data["action"]),
            updated_at=data["updated_at"],
            updated_by=data["updated_by"],
            message=data.get("message"),
            kind=data.get("kind"),
            spec=None,
            spec_bytes=data.get("bytes"),
            rolled_back_to=data.get("rolled_back_to"),
            rollout=data.get("rollout"),
        )

    def rows(self) -> list[dict[str, Any]]:
        """The history rows of this version, newest first: one, or for a rollout's candidate
        one per transition (action `rollout`, the transition's message, time and author)."""
        if self.rollout is None:
            return [self.summary()]
        rows = []
        for transition in reversed(self.rollout.get("transitions", [])):
            rows.append(
                {
                    **self.summary(),
                    "revision": transition.get("revision") or self.revision,
                    "updated_at": transition["at"],
                    "updated_by": transition["by"],
                    "message": transition["message"],
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """The history row of the REST API (no spec)."""
        return {
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "message": self.message,
            "action": self.action.value,
            "kind": self.kind,
            **_rollback_target(self.rolled_back_to),
        }

    def document(self) -> Document | None:
        """The document as it was at this version; None for a delete."""
        if self.kind is None or self.spec is None:
            return None
        return Document(
            namespace=self.namespace,
            name=self.name,
            kind=self.kind,
            spec=self.spec,
            version=self.version,
            revision=self.revision,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
            message=self.message,
            action=self.action,
            rolled_back_to=self.rolled_back_to,
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """The documents of a namespace at one store revision."""

    namespace: str
    revision: int
    etag_revision: int
    items: list[Document]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a put did: `created` a new document, `changed` it, or neither (equal content)."""

    document: Document
    created: bool
    changed: bool


@dataclass(frozen=True, slots=True)
class NewContent:
    """What a writer wants stored: computed against the current document by the caller."""

    kind: str
    spec: dict[str, Any]
    message: str | None = None
    rolled_back_to: int | None = None
    """For a rollback: the version whose spec is restored."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as stored: never the secret itself, only its sha256."""

    name: str
    role: str
    namespaces: tuple[str, ...]
    secrets: bool
    sha256: str
    created_at: str
    created_by: str

    def stored_value(self) -> bytes:
        return dumps(
            {
                "name": self.name,
                "role": self.role,
                "namespaces": list(self.namespaces),
                "secrets": self.secrets,
                "sha256": self.sha256,
                "created_at": self.created_at,
                "created_by": self.created_by,
            }
        )

    @classmethod
    def from_stored(cls, value: bytes) -> TokenRecord:
        data = json.loads(value)
        return cls(
            name=data["name"],
            role=data["role"],
            namespaces=tuple(data["namespaces"]),
            secrets=bool(data["secrets"]),
            sha256=data["sha256"],
            created_at=data["created_at"],
            created_by=data["created_by"],
        )

    def public(self) -> dict[str, Any]:
        """The listing form: everything but the hash."""
        return {
            "name": self.name,
            "role": self.role,
            "namespaces": list(self.namespaces),
            "secrets": self.secrets,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }
