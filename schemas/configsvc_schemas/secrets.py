"""Where a kind's secrets sit, and masking them: one walker for every kind.

A kind marks a secret string property with `"x-configsvc-secret": true` in its JSON Schema.
Built-in kinds are pydantic models whose JSON Schema carries the same mark (see
`secret_field`), so `secret_paths` serves both: pass `model.model_json_schema()` or a
user-defined kind's schema. A path spells keys, with `*` for every key of an object or
item of an array: `("endpoints", "*", "api_key")`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from configsvc_schemas.wire import MASK, SECRET_MARK

WILDCARD = "*"
"""In a path: every key of an object or every item of an array."""

SecretPath = tuple[str, ...]

_BRANCHES = ("anyOf", "oneOf", "allOf")
_SAME_PLACE = ("if", "then", "else")
_ANY_KEY = ("additionalProperties", "items", "unevaluatedProperties", "unevaluatedItems")


def secret_paths(schema: Mapping[str, Any]) -> tuple[SecretPath, ...]:
    """The paths of the properties `schema` marks secret, sorted.

    Local references (`#/$defs/…`, `#/definitions/…`, any `#/` JSON pointer) are followed,
    each once per path so that recursive schemas end. `patternProperties` and
    `prefixItems` count as `*`: every key or item there is treated as possibly secret.
    """
    found: set[SecretPath] = set()

    def walk(node: Any, prefix: SecretPath, seen: frozenset[str]) -> None:
        if not isinstance(node, Mapping):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref not in seen:
            walk(resolve_pointer(schema, ref), prefix, seen | {ref})
        if node.get(SECRET_MARK) is True and prefix:
            found.add(prefix)
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for key, sub in properties.items():
                walk(sub, (*prefix, str(key)), seen)
        patterns = node.get("patternProperties")
        if isinstance(patterns, Mapping):
            for sub in patterns.values():
                walk(sub, (*prefix, WILDCARD), seen)
        for key in _ANY_KEY:
            walk(node.get(key), (*prefix, WILDCARD), seen)
        prefix_items = node.get("prefixItems")
        if isinstance(prefix_items, list):
            for sub in prefix_items:
                walk(sub, (*prefix, WILDCARD), seen)
        for key in _BRANCHES:
            branches = node.get(key)
            if isinstance(branches, list):
                for sub in branches:
                    walk(sub, prefix, seen)
        for key in _SAME_PLACE:
            walk(node.get(key), prefix, seen)

    walk(schema, (), frozenset())
    return tuple(sorted(found))


def resolve_pointer(schema: Mapping[str, Any], ref: str) -> Any:
    """The node a local reference (`#`, `#/$defs/x`) names in `schema`, or None."""
    node: Any = schema
    for raw in ref.removeprefix("#").split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def locations(node: Any, path: SecretPath) -> Iterator[tuple[SecretPath, Any, str | int]]:
    """Each (location, container, key) that `path` reaches in `node` and that holds a value.

    `container[key]` is the value; `location` spells the keys (list indexes as strings).
    """
    yield from _walk(node, path, ())


def _walk(
    node: Any, path: SecretPath, loc: SecretPath
) -> Iterator[tuple[SecretPath, Any, str | int]]:
    head, rest = path[0], path[1:]
    children: list[tuple[str | int, Any]]
    if head == WILDCARD:
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            return
    elif isinstance(node, dict) and head in node:
        children = [(head, node[head])]
    else:
        return
    for key, child in children:
        if rest:
            yield from _walk(child, rest, (*loc, str(key)))
        elif child is not None:
            yield (*loc, str(key)), node, key


def value_at(node: Any, loc: SecretPath) -> Any:
    """The value at `loc` in `node` (list indexes as strings), or None where there is none."""
    for key in loc:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def has_secret(spec: Any, paths: tuple[SecretPath, ...], value: str) -> bool:
    """Whether any secret place of `spec` holds exactly `value` (e.g. `****`)."""
    return any(
        container[key] == value for path in paths for _loc, container, key in locations(spec, path)
    )


def mask(spec: Any, paths: tuple[SecretPath, ...] | list[SecretPath]) -> Any:
    """A copy of `spec` with every value at `paths` replaced by `****` (`spec` itself when
    there are no paths)."""
    if not paths:
        return spec
    masked = copy.deepcopy(spec)
    for path in paths:
        for _loc, container, key in locations(masked, path):
            container[key] = MASK
    return masked
