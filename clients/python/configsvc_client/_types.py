"""The values that flow from a source to the coordinator: documents, changes, snapshots, updates.

A source (streaming, polling, files, in-memory) is a `Synchronizer`: an async iterator of
`Update`s. Every source speaks this one interface, so the coordinator treats push and
poll alike.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Revision = int
"""The store's global revision of a change (etcd's `mod_revision`); grows over time."""

DEFAULT_ACTION = "put"
"""The action of a version whose source does not say (files, memory, older services)."""


@dataclass(frozen=True, slots=True)
class Document:
    """One version of a config document, as the service (or a file) holds it.

    `spec` is the raw mapping; a `Binding` gives it typed. Immutable: a new version is a
    new `Document`. `action` is what wrote the version: `"put"`, `"rollback"` (then
    `rolled_back_to` is the version whose spec it restored) or `"rollout"` (a staged
    rollout's promotion); services that do not send it mean `"put"`.
    """

    namespace: str
    name: str
    kind: str
    spec: Mapping[str, Any]
    version: int = 0
    revision: Revision = 0
    updated_at: str | None = None
    updated_by: str | None = None
    message: str | None = None
    action: str = DEFAULT_ACTION
    rolled_back_to: int | None = None
    rollout: str | None = None
    """The id of the staged rollout whose candidate this is (this instance was chosen for
    it); None for the document's current version."""

    @property
    def key(self) -> str:
        """`"namespace/name"`."""
        return f"{self.namespace}/{self.name}"

    def same_version(self, other: Document) -> bool:
        """Whether `other` is this version again (the same number, kind and spec), as a
        staged rollout sends it at a newer revision (e.g. its candidate, once promoted)."""
        return self.version == other.version and self.kind == other.kind and self.spec == other.spec

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Document:
        """A document from its JSON form; ValueError if a required field is missing."""
        try:
            spec = data["spec"]
            if not isinstance(spec, Mapping):
                raise ValueError("spec must be an object")
            return cls(
                namespace=str(data["namespace"]),
                name=str(data["name"]),
                kind=str(data["kind"]),
                spec=spec,
                version=int(data.get("version") or 0),
                revision=int(data.get("revision") or 0),
                updated_at=_opt_str(data.get("updated_at")),
                updated_by=_opt_str(data.get("updated_by")),
                message=_opt_str(data.get("message")),
                action=str(data.get("action") or DEFAULT_ACTION),
                rolled_back_to=_opt_int(data.get("rolled_back_to")),
                rollout=_opt_str(data.get("rollout")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a document: missing or wrong field {exc}") from None

    def to_wire(self) -> dict[str, Any]:
        """The JSON form, as `GET /v1/configs/{ns}/{name}` answers it."""
        wire = {
            "namespace": self.namespace,
            "name": self.name,
            "kind": self.kind,
            "spec": dict(self.spec),
            "message": self.message,
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "action": self.action,
            **({} if self.rolled_back_to is None else {"rolled_back_to": self.rolled_back_to}),
        }
        if self.rollout is not None:
            wire["rollout"] = self.rollout
        return wire


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class CallUsage:
    """What live helpers did on one version of a document since it arrived: tries sent to
    its endpoints and those that failed (reported to the fleet while it is a rollout's
    candidate, so that the rollout can abort on its error rate)."""

    key: str
    version: int
    rollout: str | None
    tries: int
    failures: int


@dataclass(frozen=True, slots=True)
class Change:
    """One put or delete, at `revision`. A put carries the new `document`."""

    action: Literal["put", "delete"]
    namespace: str
    name: str
    revision: Revision
    document: Document | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def put(cls, document: Document) -> Change:
        return cls("put", document.namespace, document.name, document.revision, document)

    @classmethod
    def delete(cls, namespace: str, name: str, revision: Revision) -> Change:
        return cls("delete", namespace, name, revision)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every document of `namespaces` as of `revision`; it replaces what was held for them.

    `namespaces` None means every namespace the client watches.
    """

    revision: Revision
    documents: tuple[Document, ...]
    namespaces: tuple[str, ...] | None = None


class SourceState(enum.Enum):
    """What a source says about itself."""

    INITIALIZING = "initializing"
    """Nothing received yet."""
    VALID = "valid"
    """Connected and up to date (a stream is open, a poll answered, files were read)."""
    INTERRUPTED = "interrupted"
    """Not connected; retrying. The last good value stays."""
    OFF = "off"
    """Stopped, or refused for good (a bad or revoked token); retries only slowly."""


@dataclass(frozen=True, slots=True)
class SourceErrorInfo:
    """Why a source is not VALID. `code` is short and stable (`"unauthorized"`,
    `"forbidden"`, `"unreachable"`, `"timeout"`, `"http_error"`, `"protocol_error"`,
    `"silent"`, `"invalid_files"`); `message` says more; secrets never appear in either."""

    code: str
    message: str = ""
    permanent: bool = False

    def __str__(self) -> str:
        return self.code if not self.message else f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Update:
    """What a source reports: its state, and data to apply.

    A `snapshot` is applied first, then `changes` in order. An update with neither only
    reports the state (VALID with no data means "still up to date").
    """

    state: SourceState
    snapshot: Snapshot | None = None
    changes: tuple[Change, ...] = field(default=())
    error: SourceErrorInfo | None = None


ResumePoint = Callable[[], Revision | None]
"""Returns the revision through which the client holds every change (None: nothing yet)."""


class Synchronizer(Protocol):
    """A source of updates that keeps the client current until it is closed.

    `sync` yields updates until cancelled; it handles its own retries and reports them
    as INTERRUPTED/OFF updates instead of raising. `since` is asked again before each
    (re)connection, so a source resumes from what the client has actually applied.
    A source's `changes` are complete and in order for all the client's namespaces
    from the point it resumed at.
    """

    name: str

    def sync(self, since: ResumePoint) -> AsyncIterator[Update]: ...

    async def aclose(self) -> None: ...
