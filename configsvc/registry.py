"""The kinds a service knows (see `configsvc.kinds`); kept as the name other modules use."""

from configsvc.kinds import BuiltinKind, Kind, KindRegistry, UserKind

__all__ = ["BuiltinKind", "Kind", "KindRegistry", "UserKind"]
