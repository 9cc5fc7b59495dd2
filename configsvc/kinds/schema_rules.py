"""What a team's JSON Schema must be to become a kind, and compiling it into a validator.

A kind's schema is JSON Schema 2020-12 whose root declares `"type": "object"`, at most
`MAX_SCHEMA_BYTES` of JSON. Refused, each with the schema's field path (`["schema", …]`):
an invalid schema; a `$schema` other than 2020-12; a `$ref` that is not local (`#…`);
`$id` below the root and dynamic references (they would make a kind depend on other
documents); `x-configsvc-secret` on anything but a string; a pattern the linear-time regex
engine cannot run (look-around, back-references) or that compiles too large; a schema whose
validation could cost more than `complexity.MAX_COST` checks per document value.

Nothing is ever fetched: the validator's retriever refuses every URI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import jsonschema_rs
from configsvc_schemas.secrets import resolve_pointer
from configsvc_schemas.wire import SECRET_MARK

from configsvc.errors import ValidationFailed
from configsvc.kinds.complexity import TooComplex, check_cost
from configsvc.kinds.messages import message

MAX_SCHEMA_BYTES = 64 * 1024
"""A kind's schema as JSON text (without insignificant whitespace)."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"

REGEX_SIZE_LIMIT = 1024 * 1024
"""Bytes a compiled pattern may take (the regex crate's `size_limit`)."""

MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
SINGLE_KEYWORDS = ("items", "contains", "additionalProperties", "unevaluatedProperties",
                   "unevaluatedItems", "propertyNames", "not", "if", "then", "else",
                   "contentSchema")  # fmt: skip
DYNAMIC_KEYWORDS = ("$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor")
STRING_TYPES = ("string", ["string"], ["string", "null"], ["null", "string"])


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """A checked schema and its validator (jsonschema-rs, formats asserted)."""

    schema: dict[str, Any]
    validator: jsonschema_rs.Validator
    cost: int
    """The most subschema checks one document value may cost."""


def schema_size(schema: Any) -> int:
    return len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())


def check_schema(schema: Any) -> CompiledSchema:
    """`schema` checked and compiled, or `ValidationFailed` with `["schema", …]` paths."""
    size = schema_size(schema)
    if size > MAX_SCHEMA_BYTES:
        _refuse(f"the schema is {size} bytes of JSON; the limit is {MAX_SCHEMA_BYTES}", [])
    if not isinstance(schema, dict):
        _refuse("the schema must be a JSON object", [])
    if schema.get("type") != "object":
        _refuse('the schema\'s root must declare "type": "object" (a spec is an object)', ["type"])
    dialect = schema.get("$schema", DIALECT)
    if not isinstance(dialect, str) or dialect.rstrip("#") != DIALECT:
        _refuse(f"only JSON Schema 2020-12 is supported ($schema: {DIALECT})", ["$schema"])
    anchors = _anchor_names(schema)
    for loc, node in _subschemas(schema):
        _check_node(node, loc, is_root=not loc)
        _check_target(schema, node, loc, anchors)
    _meta_validate(schema)
    validator = compile_validator(schema)
    try:
        cost = check_cost(schema)
    except TooComplex as exc:
        _refuse(str(exc), exc.loc)
    return CompiledSchema(schema, validator, cost)


def compile_validator(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """The validator of a schema (checked before, or read back from the store)."""
    try:
        return jsonschema_rs.Draft202012Validator(
            dict(schema),
            validate_formats=True,
            retriever=_refuse_retrieval,
            pattern_options=jsonschema_rs.RegexOptions(
                size_limit=REGEX_SIZE_LIMIT, dfa_size_limit=REGEX_SIZE_LIMIT
            ),
        )
    except jsonschema_rs.ValidationError as exc:
        where = [str(part) for part in exc.instance_path]
        _refuse(f"the schema is not valid: {_pattern_hint(exc)}", where)
    except (ValueError, TypeError, jsonschema_rs.ReferencingError) as exc:
        _refuse(f"the schema cannot be compiled: {str(exc).splitlines()[0][:200]}", [])
    except BaseException as exc:  # a panic in the Rust library (pyo3's PanicException)
        if not type(exc).__name__.endswith("PanicException"):
            raise
        _refuse("the schema cannot be compiled", [])


def _refuse_retrieval(uri: str) -> Any:
    raise ValueError(f"remote references are not allowed ({uri[:100]})")


def _pattern_hint(exc: jsonschema_rs.ValidationError) -> str:
    if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Format):
        return (
            "a pattern is not a regular expression this service runs (patterns run in linear "
            "time: no look-around, no back-references, bounded size)"
        )
    return message(exc)


def _meta_validate(schema: dict[str, Any]) -> None:
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        where = [str(part) for part in exc.instance_path]
        _refuse(f"the schema is not valid JSON Schema 2020-12: {message(exc)}", where)
    except jsonschema_rs.ReferencingError as exc:
        _refuse(f"the schema cannot be checked: {str(exc).splitlines()[0][:200]}", [])


def _check_node(node: Any, loc: list[str], *, is_root: bool) -> None:
    if not isinstance(node, dict):
        return
    for keyword in ("$ref",):
        ref = node.get(keyword)
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
            _refuse(
                "only local references (#/…) are allowed; nothing is ever fetched",
                [*loc, keyword],
            )
    for keyword in DYNAMIC_KEYWORDS:
        if keyword in node:
            _refuse(f"{keyword} is not supported; use $ref to a local $defs entry", [*loc, keyword])
    if "$id" in node and not is_root:
        _refuse("$id is allowed only at the root; use $defs and local $ref", [*loc, "$id"])
    if SECRET_MARK in node:
        if node[SECRET_MARK] is not True:
            _refuse(f"{SECRET_MARK} must be true (or absent)", [*loc, SECRET_MARK])
        if node.get("type") not in STRING_TYPES:
            _refuse(
                f'{SECRET_MARK} marks a string: the subschema must declare "type": "string"',
                [*loc, "type"],
            )


def _check_target(schema: dict[str, Any], node: Any, loc: list[str], anchors: set[str]) -> None:
    """A local `$ref` must name a part of this schema."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not isinstance(ref, str):
        return
    if ref == "#" or ref.startswith("#/"):
        found = resolve_pointer(schema, ref) is not None
    else:
        found = ref.removeprefix("#") in anchors
    if not found:
        _refuse(f"$ref {ref[:100]!r} names nothing in this schema", [*loc, "$ref"])


def _anchor_names(schema: dict[str, Any]) -> set[str]:
    return {
        node["$anchor"]
        for _loc, node in _subschemas(schema)
        if isinstance(node, dict) and isinstance(node.get("$anchor"), str)
    }


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[list[str], Any]]:
    """Every subschema position of `schema` with its path (values of `enum`, `const`,
    `default` and `examples` are data, not schemas)."""
    stack: list[tuple[list[str], Any]] = [([], schema)]
    while stack:
        loc, node = stack.pop()
        yield loc, node
        if not isinstance(node, dict):
            continue
        for keyword in MAP_KEYWORDS:
            value = node.get(keyword)
            if isinstance(value, dict):
                stack.extend(([*loc, keyword, str(k)], v) for k, v in value.items())
        for keyword in LIST_KEYWORDS:
            value = node.get(keyword)
            if isinstance(value, list):
                stack.extend(([*loc, keyword, str(i)], v) for i, v in enumerate(value))
        for keyword in SINGLE_KEYWORDS:
            if keyword in node:
                stack.append(([*loc, keyword], node[keyword]))
        for keyword, value in node.items():
            if keyword.startswith("x-") or keyword in _KNOWN:
                continue
            if isinstance(value, dict):  # schemas under unknown keywords may be $ref targets
                stack.append(([*loc, keyword], value))


_KNOWN = frozenset(
    {*MAP_KEYWORDS, *LIST_KEYWORDS, *SINGLE_KEYWORDS, "enum", "const", "default", "examples"}
)


def _refuse(text: str, where: Sequence[str | int]) -> NoReturn:
    raise ValidationFailed(text, [{"loc": ["schema", *where], "msg": text}])
