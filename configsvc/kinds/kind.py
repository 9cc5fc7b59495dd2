"""One kind behind one interface: a built-in pydantic model or a team's JSON Schema.

    Kind            validate, admit a write, mask and restore secrets, JSON Schema
    ├── BuiltinKind a pydantic model of `configsvc_schemas` (cross-field rules included)
    └── UserKind    a registered JSON Schema, compiled once per stored version

Both refuse unknown fields (a user schema says so itself, with `additionalProperties`),
report problems at `["spec", …]` paths, and never put the input value in an error.
"""

from __future__ import annotations

import abc
import copy
import functools
from typing import Any

import jsonschema_rs
from configsvc_schemas import KindModel
from configsvc_schemas.secrets import SecretPath, has_secret, locations, mask, value_at
from configsvc_schemas.wire import MASK
from pydantic import ValidationError

from configsvc.errors import ValidationFailed, validation_failed
from configsvc.kinds.complexity import MAX_CHECKS, check_cost, within_budget
from configsvc.kinds.messages import error_details
from configsvc.kinds.schema_rules import CompiledSchema, compile_validator
from configsvc.store.kinds import KindRecord

BUILTIN_VERSION = 1
"""The `version` built-in kinds report (they change only with a release of the service)."""


class Kind(abc.ABC):
    """A registered kind: how its specs are validated and where its secrets sit."""

    name: str
    secrets: tuple[SecretPath, ...]
    builtin: bool
    version: int
    description: str | None
    deleted: bool = False
    """A user kind that was deleted: known only to mask the history of its documents."""

    @abc.abstractmethod
    def validate(self, spec: Any) -> dict[str, Any]:
        """The spec as stored, or `ValidationFailed` with `["spec", …]` paths."""

    @abc.abstractmethod
    def admit(self, spec: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
        """What a write of `spec` over the stored spec `stored` stores: `****` secrets
        restored from `stored`, validated; `ValidationFailed` otherwise."""

    @abc.abstractmethod
    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the spec."""

    def mask(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A copy of `spec` with every secret value replaced by `****` (`spec` itself when
        the kind has no secrets)."""
        masked: dict[str, Any] = mask(spec, self.secrets)
        return masked

    def restore_masked(self, spec: Any, stored: dict[str, Any] | None) -> Any:
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


class BuiltinKind(Kind):
    """A kind shipped with the service: a pydantic model with cross-field rules."""

    builtin = True
    version = BUILTIN_VERSION

    def __init__(self, name: str, model: type[KindModel], secrets: tuple[SecretPath, ...]) -> None:
        self.name = name
        self.model = model
        self.secrets = secrets
        self.description = (model.__doc__ or "").strip().split("\n\n")[0] or None

    def validate(self, spec: Any) -> dict[str, Any]:
        try:
            value = self.model.model_validate(spec, extra="forbid")
        except ValidationError as exc:
            raise validation_failed(f"spec is not a valid {self.name}", exc, ("spec",)) from None
        dumped: dict[str, Any] = value.model_dump(mode="json", exclude_unset=True)
        return dumped

    def admit(self, spec: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
        restored: dict[str, Any] = self.restore_masked(self.validate(spec), stored)
        return restored

    def json_schema(self) -> dict[str, Any]:
        """The model's JSON Schema, with unknown fields refused as the service does."""
        schema = self.model.model_json_schema()
        _forbid_additional(schema)
        return schema


class UserKind(Kind):
    """A kind a team registered: its stored record, validated with its compiled schema.

    The validator is compiled on first use and kept with this object, which stands for one
    stored version of the kind (the registry keeps one per kind, replaced when it changes).
    """

    builtin = False

    def __init__(self, record: KindRecord) -> None:
        self.record = record
        self.name = record.name
        self.version = record.version
        self.description = record.description
        self.secrets = record.secrets
        self.deleted = record.deleted

    @classmethod
    def candidate(cls, name: str, compiled: CompiledSchema) -> UserKind:
        """A kind not stored yet, from a checked schema (to check stored documents with)."""
        record = KindRecord(name, 0, compiled.schema, None, (), "", "")
        kind = cls(record)
        kind.__dict__.update(validator=compiled.validator, cost=compiled.cost)  # cached
        return kind

    @property
    def revision(self) -> int:
        """The store revision of this version of the kind."""
        return self.record.revision

    @functools.cached_property
    def validator(self) -> jsonschema_rs.Validator:
        return compile_validator(self.json_schema())

    @functools.cached_property
    def cost(self) -> int:
        """The most subschema checks one document value may cost (see `complexity`)."""
        return check_cost(self.json_schema())

    def validate(self, spec: Any) -> dict[str, Any]:
        if self.deleted:
            detail = {"loc": ["kind"], "msg": "the kind was deleted"}
            raise ValidationFailed(f"unknown kind {self.name!r}", [detail])
        if not within_budget(spec, self.cost):
            limit = f"{MAX_CHECKS} checks ({self.cost} per value)"
            detail = {"loc": ["spec"], "msg": f"too many values to validate within {limit}"}
            raise ValidationFailed(f"spec is too large for kind {self.name}", [detail])
        if self.validator.is_valid(spec):
            checked: dict[str, Any] = spec
            return checked
        try:
            self.validator.validate(spec)  # the first problem only: bounded work
        except jsonschema_rs.ValidationError as exc:
            raise ValidationFailed(
                f"spec is not a valid {self.name}", error_details(exc, "spec")
            ) from None
        checked = spec
        return checked

    def admit(self, spec: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
        # Restored first: a secret's own rules (a pattern, a length) hold for the real value.
        return self.validate(self.restore_masked(spec, stored))

    def json_schema(self) -> dict[str, Any]:
        """The schema as it was given."""
        return self.record.schema or {}


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
