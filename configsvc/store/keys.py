"""The etcd key layout, under one prefix (`/configsvc/` by default).

    {prefix}doc/{ns}/             namespace marker: touched by every put and delete in the
                                  namespace, so its mod_revision is the namespace's ETag; it
                                  sorts first in the namespace's range, so one range read gives
                                  the documents and the ETag at one revision
    {prefix}doc/{ns}/{name}       the current document's metadata (absent once deleted); its
                                  spec is the one under `hspec/` of its version
    {prefix}ver/{ns}/{name}       the last version ever given to the document; survives delete,
                                  so versions never repeat; every write changes it, which makes
                                  its mod_revision the compare-and-set guard of the document
    {prefix}hist/{ns}/{name}/{v}  one history record per version (metadata), zero-padded so
                                  keys sort by version; records outlive etcd compaction
    {prefix}hspec/{ns}/{name}/{v} the spec of that version (puts and rollbacks), stored once:
                                  apart from the metadata so that listing history never reads
                                  specs, and the only copy of the current version's spec
    {prefix}tok/{name}            an API token: name, role, namespace patterns, sha256 of secret
    {prefix}kind/{Kind}           a user-defined kind: its schema and version; once deleted, a
                                  tombstone (no schema) that keeps the version counter and the
                                  secret paths, so versions never repeat and the history of its
                                  documents stays masked; its mod_revision guards every write
                                  of a document of that kind
    {prefix}kuse/{Kind}           touched by every write of a document of that kind; a change of
                                  the kind requires it unchanged since it read the documents, so
                                  a document written meanwhile makes it check them again
    {prefix}khist/{Kind}/{v}      one history record per version of the kind (metadata)
    {prefix}kschema/{Kind}/{v}    the schema of that version (puts only)
    {prefix}rollout/{ns}/{name}   the document's latest staged rollout (any state): its candidate
                                  version, steps, match, state and last transition (see
                                  `rollout_record`); read with the document by every write, so
                                  a plain write during a running or paused rollout is refused
    {prefix}meta/layout           the key layout version of the data (2; see `migrate`)
    {prefix}meta/secret-keys      a check value per key that sealed secrets at rest
    {prefix}audit/{time}-{tag}    one audit record per change, in time order (see `audit`)
    {prefix}sess/{id_sha256}      a console session: the token's name and hash, its expiry; the
                                  key is the sha256 of the session id (the id itself, the
                                  cookie's value, is never stored)
    {prefix}flt/i/{instance}      the fleet record of one SDK instance: what it applied and
                                  rejected, as of its last report that changed anything
    {prefix}flt/s/{service}       what one service instance has heard from the fleet lately:
                                  the instances that reported to it since its previous write
                                  (rewritten at most every fraction of a second, only when
                                  something was heard), so every instance knows every
                                  instance's last report without a write per report

Instance ids match `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` and service ids are made the same way.
Names and namespaces match `[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?`, kinds
`[A-Z][A-Za-z0-9]{0,63}`, so they hold no `/`.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION_DIGITS = 12

DOC_FAMILY = "doc"
SPEC_FAMILY = "hspec"
TOKEN_FAMILY = "tok"  # noqa: S105 - a key segment
KIND_FAMILY = "kind"
SESSION_FAMILY = "sess"
FLEET_FAMILY = "flt"
ROLLOUT_FAMILY = "rollout"
"""Key families (the first segment after the prefix) that the store watcher dispatches."""
FLEET_RECORD = "i"
FLEET_HEARD = "s"
"""The two kinds of fleet keys: an SDK instance's record, a service instance's hearing."""


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds and parses the keys of one service's data in etcd."""

    prefix: str = "/configsvc/"

    def docs_root(self) -> bytes:
        return f"{self.prefix}{DOC_FAMILY}/".encode()

    def namespace(self, ns: str) -> bytes:
        """The namespace's range prefix; the key itself is the namespace marker."""
        return f"{self.prefix}doc/{ns}/".encode()

    def doc(self, ns: str, name: str) -> bytes:
        return f"{self.prefix}doc/{ns}/{name}".encode()

    def version(self, ns: str, name: str) -> bytes:
        return f"{self.prefix}ver/{ns}/{name}".encode()

    def history_prefix(self, ns: str, name: str) -> bytes:
        return f"{self.prefix}hist/{ns}/{name}/".encode()

    def history(self, ns: str, name: str, version: int) -> bytes:
        return self.history_prefix(ns, name) + f"{version:0{VERSION_DIGITS}d}".encode()

    def history_all(self) -> bytes:
        """The range prefix of every history record of every namespace."""
        return f"{self.prefix}hist/".encode()

    def history_root(self, ns: str) -> bytes:
        """The range prefix of every history record of a namespace."""
        return f"{self.prefix}hist/{ns}/".encode()

    def history_spec_all(self) -> bytes:
        """The range prefix of every stored spec of every namespace."""
        return f"{self.prefix}{SPEC_FAMILY}/".encode()

    def history_spec_root(self, ns: str) -> bytes:
        return f"{self.prefix}hspec/{ns}/".encode()

    def parse_history(self, ns: str, key: bytes) -> tuple[str, int]:
        """`(name, version)` of a history or history-spec key of namespace `ns`."""
        head, _, version = key.decode().rpartition("/")
        return head.rpartition("/")[2], int(version)

    def history_spec_prefix(self, ns: str, name: str) -> bytes:
        return f"{self.prefix}{SPEC_FAMILY}/{ns}/{name}/".encode()

    @staticmethod
    def split_version_key(rest: str) -> tuple[str, str, int] | None:
        """`(namespace, name, version)` of a history or spec key without its family prefix."""
        ns, _, tail = rest.partition("/")
        name, _, version = tail.partition("/")
        if not name or not version.isdigit():
            return None
        return ns, name, int(version)

    def history_spec(self, ns: str, name: str, version: int) -> bytes:
        return f"{self.prefix}hspec/{ns}/{name}/{version:0{VERSION_DIGITS}d}".encode()

    def audit(self, suffix: str) -> bytes:
        """An audit record's key (`suffix`: its time and a random tag), or a prefix."""
        return f"{self.prefix}audit/{suffix}".encode()

    def secret_keys(self) -> bytes:
        """Check values of the keys that sealed secrets (see `crypto.store_keys`)."""
        return f"{self.prefix}meta/secret-keys".encode()

    def layout_marker(self) -> bytes:
        """The key layout version the data under this prefix is in (see `migrate`)."""
        return f"{self.prefix}meta/layout".encode()

    def token(self, name: str) -> bytes:
        return f"{self.prefix}tok/{name}".encode()

    def tokens_root(self) -> bytes:
        return f"{self.prefix}{TOKEN_FAMILY}/".encode()

    def kind(self, name: str) -> bytes:
        return f"{self.prefix}{KIND_FAMILY}/{name}".encode()

    def kind_use(self, name: str) -> bytes:
        return f"{self.prefix}kuse/{name}".encode()

    def kinds_root(self) -> bytes:
        return f"{self.prefix}{KIND_FAMILY}/".encode()

    def kind_history_prefix(self, name: str) -> bytes:
        return f"{self.prefix}khist/{name}/".encode()

    def kind_history(self, name: str, version: int) -> bytes:
        return self.kind_history_prefix(name) + f"{version:0{VERSION_DIGITS}d}".encode()

    def kind_schema(self, name: str, version: int) -> bytes:
        return f"{self.prefix}kschema/{name}/{version:0{VERSION_DIGITS}d}".encode()

    def session(self, id_sha256: str) -> bytes:
        return f"{self.prefix}{SESSION_FAMILY}/{id_sha256}".encode()

    def sessions_root(self) -> bytes:
        return f"{self.prefix}{SESSION_FAMILY}/".encode()

    def fleet_root(self) -> bytes:
        """The range prefix of every fleet key (records and what services heard)."""
        return f"{self.prefix}{FLEET_FAMILY}/".encode()

    def fleet_record(self, instance: str) -> bytes:
        return f"{self.prefix}{FLEET_FAMILY}/{FLEET_RECORD}/{instance}".encode()

    def fleet_heard(self, service: str) -> bytes:
        return f"{self.prefix}{FLEET_FAMILY}/{FLEET_HEARD}/{service}".encode()

    @staticmethod
    def split_fleet(rest: str) -> tuple[str, str] | None:
        """`(FLEET_RECORD or FLEET_HEARD, id)` of a fleet-family key without its
        `{prefix}flt/`; None for any other key."""
        part, sep, ident = rest.partition("/")
        return (part, ident) if sep and ident and part in (FLEET_RECORD, FLEET_HEARD) else None

    def parse_fleet(self, key: bytes) -> tuple[str, str] | None:
        """`(FLEET_RECORD or FLEET_HEARD, id)` of a full fleet key; None for any other key."""
        root = self.fleet_root()
        if not key.startswith(root):
            return None
        return self.split_fleet(key[len(root) :].decode())

    def rollout(self, ns: str, name: str) -> bytes:
        return f"{self.prefix}{ROLLOUT_FAMILY}/{ns}/{name}".encode()

    def rollouts_root(self) -> bytes:
        """The range prefix of every document's latest rollout."""
        return f"{self.prefix}{ROLLOUT_FAMILY}/".encode()

    def rollout_namespace(self, ns: str) -> bytes:
        """The range prefix of the latest rollouts of a namespace's documents."""
        return f"{self.prefix}{ROLLOUT_FAMILY}/{ns}/".encode()

    @staticmethod
    def split_doc(rest: str) -> tuple[str, str] | None:
        """`(namespace, name)` of a doc-family key without its `{prefix}doc/`;
        `(namespace, "")` for a namespace marker."""
        ns, sep, name = rest.partition("/")
        return (ns, name) if sep else None

    def parse_doc(self, key: bytes) -> tuple[str, str] | None:
        """`(namespace, name)` of a document key; `(namespace, "")` for a namespace marker."""
        root = self.docs_root()
        if not key.startswith(root):
            return None
        return self.split_doc(key[len(root) :].decode())
