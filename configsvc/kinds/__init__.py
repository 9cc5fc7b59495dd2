"""Kinds: what a document's `spec` must be, built in or registered by a team at run time.

kind.py          one interface (`Kind`) for built-in pydantic kinds and user JSON Schemas
schema_rules.py  what a team's schema must be; compiling it (jsonschema-rs, nothing fetched)
complexity.py    the bound on what a schema may cost to validate one document value
messages.py      validation errors as field paths and words that never quote the value
registry.py      the kinds a process knows: built-ins and a cache of the stored user kinds
writes.py        a document write validated against its kind as stored when it commits
replay.py        snapshots and replays for watch streams, with their kinds made known
"""

from configsvc.kinds.kind import BuiltinKind, Kind, UserKind
from configsvc.kinds.registry import KindRegistry

__all__ = ["BuiltinKind", "Kind", "KindRegistry", "UserKind"]
