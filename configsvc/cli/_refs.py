"""Document addresses on the command line: `NS/NAME` and bare namespaces."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from configsvc_schemas.wire import NAME_RULE, is_valid_name


@dataclass(frozen=True, slots=True, order=True)
class DocRef:
    """A document's address: `namespace/name`."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


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
