"""Secret values out of the texts SDK instances report: a rejection's reason may quote a
value of the document it refused, and tokens that may not read secrets see `****` instead."""

from __future__ import annotations

from collections.abc import Iterable

from configsvc_schemas.secrets import locations
from configsvc_schemas.wire import MASK

from configsvc.registry import KindRegistry
from configsvc.store.records import Document


def secret_values(registry: KindRegistry, documents: Iterable[Document]) -> tuple[str, ...]:
    """Every secret value the documents hold, longest first (a value that holds another is
    masked whole)."""
    found: set[str] = set()
    for document in documents:
        kind = registry.find(document.kind)
        for path in kind.secrets if kind is not None else ():
            for _loc, container, key in locations(document.spec, path):
                value = container[key]
                if isinstance(value, str) and value and value != MASK:
                    found.add(value)
    return tuple(sorted(found, key=len, reverse=True))


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` replaced by `****`."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
