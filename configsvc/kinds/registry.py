"""The kinds one service knows: the built-ins, and the user kinds as last seen in the store.

User kinds are cached per process, one `UserKind` per name (its validator compiled once per
stored version), and the cache only moves forward: a record replaces the cached one only if
its store revision is newer. It is warmed by the store watch (`on_change`), loaded whole
when the watch (re)starts (`load`), and refreshed by every read of the store that meets a
kind (`learn`, `resolve`). Writes never trust it: a document write reads its kind in its
own transaction (`KindGuard`), so a kind changed on another instance decides the very next
write here.

Deleted kinds stay cached as tombstones: their documents' history is still masked with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from configsvc_schemas import BUILTIN_KINDS, KindModel
from configsvc_schemas.secrets import SecretPath, secret_paths
from configsvc_schemas.wire import is_valid_kind_name

from configsvc.errors import NotFound
from configsvc.kinds.kind import BuiltinKind, Kind, UserKind
from configsvc.store.keys import KIND_FAMILY, KeyLayout
from configsvc.store.kinds import KindRecord, KindStore
from configsvc.store.watcher import ChangeFeed, FamilyChange


class KindRegistry:
    """The kinds one service knows, by name."""

    def __init__(
        self,
        models: Mapping[str, type[KindModel]] = BUILTIN_KINDS,
        store: KindStore | None = None,
    ) -> None:
        self._builtin: dict[str, Kind] = {
            name: BuiltinKind(name, model, secret_paths(model.model_json_schema()))
            for name, model in models.items()
        }
        self._user: dict[str, UserKind] = {}
        self.store = store
        self.layout = store.layout if store is not None else KeyLayout()
        self._feed: ChangeFeed | None = None

    # ---- looking up --------------------------------------------------------------------

    def names(self) -> list[str]:
        """The kinds documents may have: the built-ins and the user kinds last seen."""
        live = (name for name, kind in self._user.items() if not kind.deleted)
        return sorted({*self._builtin, *live})

    def get(self, name: str) -> Kind:
        """The kind called `name` (not a deleted one), or `NotFound`."""
        kind = self.find(name)
        if kind is None or kind.deleted:
            raise NotFound(f"unknown kind {name!r}; known: {', '.join(self.names())}")
        return kind

    def find(self, name: str) -> Kind | None:
        """The kind called `name` as last seen, deleted ones included (to mask the history of
        their documents), or None."""
        return self._builtin.get(name) or self._user.get(name)

    def secret_paths(self, name: str) -> tuple[SecretPath, ...]:
        """Where the kind called `name` holds secrets as last seen (none if unknown): what
        the store seals at rest."""
        kind = self.find(name)
        return kind.secrets if kind is not None else ()

    def builtins(self) -> list[Kind]:
        return list(self._builtin.values())

    def builtin(self, name: str) -> Kind | None:
        return self._builtin.get(name)

    def is_builtin(self, name: str) -> bool:
        return name in self._builtin

    # ---- keeping the cache -------------------------------------------------------------

    def use_store(self, store: KindStore) -> None:
        """Read user kinds from `store` (set once, at start)."""
        self.store = store
        self.layout = store.layout

    def apply(self, record: KindRecord) -> UserKind:
        """The kind of `record`, cached unless a newer version of it is cached already."""
        cached = self._user.get(record.name)
        if cached is not None and cached.revision >= record.revision:
            return cached if cached.revision == record.revision else UserKind(record)
        kind = UserKind(record)
        self._user[record.name] = kind
        return kind

    def resolve(self, name: str, value: bytes | None, revision: int) -> UserKind | None:
        """The user kind stored as `value` at `revision` (None when there is no record),
        parsed and compiled only when it is not the cached version."""
        if value is None:
            return None
        cached = self._user.get(name)
        if cached is not None and cached.revision == revision:
            return cached
        return self.apply(KindRecord.from_stored(name, value, revision))

    def follow(self, feed: ChangeFeed) -> None:
        """Keep the cache warm from the store watch: every change of a kind, in revision
        order (before the documents written after it), and a full read whenever the watch
        (re)starts, before it hands on any change."""
        self._feed = feed
        feed.on(KIND_FAMILY, self._on_change)
        feed.on_start(self.load)

    def _on_change(self, change: FamilyChange) -> None:
        if change.value is not None and is_valid_kind_name(change.key):
            self.resolve(change.key, change.value, change.revision)

    async def load(self, _revision: int = 0) -> None:
        """Read every user kind into the cache."""
        if self.store is not None:
            for record in await self.store.read_all():
                self.apply(record)

    async def learn(self, names: Iterable[str], as_of: int) -> None:
        """Make sure the kinds `names` are cached as they were at store revision `as_of` or
        later: documents read from the store (a snapshot, a listing) may be newer than what
        the watch has shown, and must be masked by their kinds as stored."""
        fresh_through = self._feed.head if self._feed is not None else 0
        wanted = {name for name in names if name not in self._builtin}
        if as_of <= fresh_through:
            wanted -= set(self._user)
        if wanted and self.store is not None:
            for record in (await self.store.read(sorted(wanted))).values():
                self.apply(record)
