"""Validation errors of a JSON Schema as the API's details: a field path and a message
made from the schema alone, never from the value that failed (it may be a secret)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs

MAX_SHOWN = 120
"""Characters of a schema value (an enum, a const) quoted in a message."""

_BOUNDS = {
    "minimum": "must be >= {limit}",
    "maximum": "must be <= {limit}",
    "exclusiveMinimum": "must be > {limit}",
    "exclusiveMaximum": "must be < {limit}",
    "minLength": "must have at least {limit} characters",
    "maxLength": "must have at most {limit} characters",
    "minItems": "must have at least {limit} items",
    "maxItems": "must have at most {limit} items",
    "minProperties": "must have at least {limit} fields",
    "maxProperties": "must have at most {limit} fields",
    "additionalItems": "must have at most {limit} items",
}

_FIXED = {
    "anyOf": "matches none of the shapes the schema allows (anyOf)",
    "oneOf": "must match exactly one of the shapes the schema allows (oneOf)",
    "not": "matches a shape the schema forbids (not)",
    "falseSchema": "is not allowed here",
    "uniqueItems": "items must be unique",
    "contains": "must contain an item the schema describes (contains)",
    "propertyNames": "has a field name the schema does not allow (propertyNames)",
    "backtrackLimitExceeded": "cannot be checked against the schema's pattern",
    "regexEngineFailure": "cannot be checked against the schema's pattern",
}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def error_details(error: jsonschema_rs.ValidationError, prefix: str) -> list[dict[str, Any]]:
    """The details of one validation error, at `[prefix, *instance path]`.

    Unknown fields give one detail each, at the field's own path.
    """
    loc: list[str | int] = [prefix, *error.instance_path]
    kind = error.kind
    if isinstance(
        kind,
        jsonschema_rs.ValidationErrorKind.AdditionalProperties
        | jsonschema_rs.ValidationErrorKind.UnevaluatedProperties,
    ):
        return [
            {"loc": [*loc, name], "msg": "unknown field: the schema allows no other fields"}
            for name in kind.unexpected
        ]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return [{"loc": [*loc, kind.property], "msg": "field required"}]
    return [{"loc": loc, "msg": message(error)}]


def message(error: jsonschema_rs.ValidationError) -> str:
    """What is wrong, in words that quote the schema and never the value."""
    kind = error.kind
    keyword = kind.name
    kinds = jsonschema_rs.ValidationErrorKind
    if isinstance(kind, kinds.Type):
        return f"must be of type {' or '.join(kind.types)}"
    if isinstance(kind, kinds.Enum):
        return f"must be one of {_shown(kind.options)}"
    if isinstance(kind, kinds.Constant):
        return f"must be {_shown(kind.expected_value)}"
    if isinstance(kind, kinds.Pattern):
        return f"must match the pattern {_shown(kind.pattern)}"
    if isinstance(kind, kinds.Format):
        return f"must be a valid {kind.format}"
    if isinstance(kind, kinds.MultipleOf):
        return f"must be a multiple of {kind.multiple_of}"
    if isinstance(kind, kinds.OneOfMultipleValid):
        return "matches more than one of the shapes the schema allows (oneOf)"
    if isinstance(kind, kinds.Referencing):
        return "refers to a part of the schema that does not exist"
    limit = getattr(kind, "limit", None)
    if keyword in _BOUNDS and limit is not None:
        return _BOUNDS[keyword].format(limit=limit)
    return _FIXED.get(keyword, f"does not satisfy the schema's {keyword!r} rule")
