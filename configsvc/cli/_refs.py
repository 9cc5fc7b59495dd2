"""Document addresses on the command line: `NS/NAME` and bare namespaces."""

from __future__ import annotations

import re
from dataclasses import dataclass

import typer

NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
NAME_RULE = "1-63 of a-z 0-9 . _ -, starting and ending with a letter or digit"


@dataclass(frozen=True, slots=True, order=True)
class DocRef:
    """A document's address: `namespace/name`."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def is_valid_name(value: str) -> bool:
    return NAME_PATTERN.fullmatch(value) is not None


def parse_ref(value: str) -> DocRef:
    """`NS/NAME` as a `DocRef`; a usage error (exit 2) when malformed."""
    namespace, sep, name = value.partition("/")
    if not sep:
        raise typer.BadParameter(f"{value!r} is not NS/NAME (e.g. prod/chat-models)")
    for part in (namespace, name):
        if not is_valid_name(part):
            raise typer.BadParameter(f"{part!r} in {value!r} is not a valid name: {NAME_RULE}")
    return DocRef(namespace, name)


def parse_namespace(value: str) -> str:
    """A namespace name; a usage error (exit 2) when malformed."""
    if not is_valid_name(value):
        raise typer.BadParameter(f"{value!r} is not a valid namespace: {NAME_RULE}")
    return value
