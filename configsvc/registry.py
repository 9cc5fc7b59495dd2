"""The kinds a service knows: look one up, validate a spec, mask secrets, give JSON Schema."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from configsvc_schemas import BUILTIN_KINDS, KindModel
from configsvc_schemas.secrets import (
    SecretPath,
    has_secret,
    locations,
    mask,
    secret_paths,
    value_at,
)
from configsvc_schemas.wire import MASK
from pydantic import ValidationError

from configsvc.errors import NotFound, ValidationFailed, validation_failed


@dataclass(frozen=True)
class Kind:
    """One registered kind: its model and where its secrets sit."""

    name: str
    model: type[KindModel]
    secrets: tuple[SecretPath, ...] = field(default=())

    def validate(self, spec: Any) -> dict[str, Any]:
        """The spec as stored (normalised JSON), or `ValidationFailed` with field paths.

        Unknown fields are refused. Details carry `["spec", ...]` paths and messages, never
        the input value (it may be a secret).
        """
        try:
            value = self.model.model_validate(spec, extra="forbid")
        except ValidationError as exc:
            raise validation_failed(f"spec is not a valid {self.name}", exc, ("spec",)) from None
        dumped: dict[str, Any] = value.model_dump(mode="json", exclude_unset=True)
        return dumped

    def mask(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A copy of `spec` with every secret value replaced by `****` (`spec` itself when
        the kind has no secrets)."""
        masked: dict[str, Any] = mask(spec, self.secrets)
        return masked

    def restore_masked(self, spec: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        """`spec` with each `****` secret replaced by the stored value at the same place.

        A client that read a masked document may write it back unchanged; the secrets it could
        not see are kept. A `****` with nothing stored at its place is a validation error.
        """
        if not has_secret(spec, self.secrets, MASK):
            return spec
        restored = copy.deepcopy(spec)
        unresolved: list[list[str]] = []
        for path in self.secrets:
            for loc, container, key in locations(restored, path):
                if container[key] != MASK:
                    continue
                previous = value_at(stored, loc) if stored is not None else None
                if isinstance(previous, str) and previous != MASK:
                    container[key] = previous
                else:
                    unresolved.append(["spec", *loc])
        if unresolved:
            raise ValidationFailed(
                "a masked secret (****) was sent where no secret is stored",
                [{"loc": loc, "msg": "send the secret itself, not ****"} for loc in unresolved],
            )
        return restored

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the spec, with unknown fields refused as the service does."""
        schema = self.model.model_json_schema()
        _forbid_additional(schema)
        return schema


def _forbid_additional(schema: Any) -> None:
    """Set `additionalProperties: false` on every object schema that lists its properties."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _forbid_additional(value)
    elif isinstance(schema, list):
        for item in schema:
            _forbid_additional(item)


class KindRegistry:
    """The kinds one service knows, by name."""

    def __init__(self, models: Mapping[str, type[KindModel]] = BUILTIN_KINDS) -> None:
        self._kinds = {
            name: Kind(name, model, secret_paths(model.model_json_schema()))
            for name, model in models.items()
        }

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def get(self, name: str) -> Kind:
        """The kind called `name`, or `NotFound`."""
        try:
            return self._kinds[name]
        except KeyError:
            raise NotFound(f"unknown kind {name!r}; known: {', '.join(self.names())}") from None

    def find(self, name: str) -> Kind | None:
        return self._kinds.get(name)

    def secret_paths(self, name: str) -> tuple[SecretPath, ...]:
        """Where the kind called `name` holds secrets (none for an unknown kind)."""
        kind = self._kinds.get(name)
        return kind.secrets if kind is not None else ()
