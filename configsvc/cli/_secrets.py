"""Masking secret values (`api_key`, …) in what the CLI prints.

A kind's JSON Schema marks its secret fields with `"x-configsvc-secret": true`; the CLI
fetches the schemas from the service once per run and masks every value at those places.
A kind the service does not describe is masked by the secret field names of all kinds.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from typing import Any

from configsvc_schemas.secrets import (
    WILDCARD,
    SecretPath,
    locations,
    mask,
    secret_paths,
    value_at,
)
from configsvc_schemas.wire import MASK

SchemaSource = Callable[[], Mapping[str, Any]]


class Shown(enum.StrEnum):
    """How a masked secret reads in a diff; the marks are replaced after YAML rendering."""

    SAME = "CONFIGSVC-SECRET-SAME"
    CHANGED = "CONFIGSVC-SECRET-CHANGED"
    UNKNOWN = "CONFIGSVC-SECRET-UNKNOWN"

    @property
    def display(self) -> str:
        return {
            Shown.SAME: MASK,
            Shown.CHANGED: f"{MASK}  (changed)",
            Shown.UNKNOWN: f"{MASK}  (may differ: this token may not read secrets)",
        }[self]


class SecretMasker:
    """Masks a kind's secret values, using the schemas `load` fetches (once, when needed)."""

    def __init__(self, load: SchemaSource) -> None:
        self._load = load
        self._paths: dict[str, tuple[SecretPath, ...]] | None = None

    def paths(self, kind: str) -> tuple[SecretPath, ...]:
        """The secret paths of `kind`; for an unknown kind, every known secret field name."""
        if self._paths is None:
            self._paths = {name: secret_paths(schema) for name, schema in self._load().items()}
        if kind in self._paths:
            return self._paths[kind]
        names = {path[-1] for paths in self._paths.values() for path in paths}
        return _anywhere(names)

    def mask(self, kind: str, spec: Any) -> Any:
        """A copy of `spec` with every secret value replaced by `****`."""
        return mask(copy.deepcopy(spec), self.paths(kind))

    def mask_pair(
        self, old: tuple[str, Any] | None, new: tuple[str, Any] | None
    ) -> tuple[Any, Any]:
        """Both sides of a diff (`(kind, spec)` or None) with secrets replaced by `Shown` marks:
        `CHANGED` on the new side where the two values differ, so that the diff shows a
        changed line without revealing either value. A `****` on the new side means "keep"
        (the service restores the stored value), so it compares equal."""
        old_spec = copy.deepcopy(old[1]) if old else None
        new_spec = copy.deepcopy(new[1]) if new else None
        kinds = {side[0] for side in (old, new) if side is not None}
        paths = sorted({path for kind in kinds for path in self.paths(kind)})
        originals = copy.deepcopy(old_spec)
        for path in paths:
            for _loc, container, key in locations(old_spec, path):
                container[key] = Shown.SAME.value
            for loc, container, key in locations(new_spec, path):
                container[key] = _compare(value_at(originals, loc), container[key]).value
        return old_spec, new_spec


def _compare(before: Any, after: Any) -> Shown:
    if before is None or after == MASK or before == after:
        return Shown.SAME
    if before == MASK:
        return Shown.UNKNOWN
    return Shown.CHANGED


def _anywhere(names: set[str]) -> tuple[SecretPath, ...]:
    """Paths that reach a field called one of `names` at any of the first few depths."""
    return tuple((*((WILDCARD,) * depth), name) for name in sorted(names) for depth in range(6))
