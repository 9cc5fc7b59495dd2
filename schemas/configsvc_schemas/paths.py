"""Paths into a spec, for its secret fields: `("endpoints", "*", "api_key")`.

Shared by the service (masking, restoring `****`) and the CLI (masking what it prints).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WILDCARD = "*"
"""In a path: every key of an object or every item of an array."""

SecretPath = tuple[str, ...]


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
