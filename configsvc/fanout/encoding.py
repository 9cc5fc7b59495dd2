"""Events as Server-Sent Events bytes, encoded once per event (and once more masked).

Every stream of a namespace gets the same bytes: clear for tokens that may read secrets,
masked for the others, framed as an HTTP/1.1 chunk when the stream is chunked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from configsvc_schemas.wire import KEEPALIVE_COMMENT, EventName

from configsvc.registry import KindRegistry
from configsvc.store.records import Document
from configsvc.store.replay import Change

__all__ = ["KEEPALIVE_COMMENT", "EncodedEvent", "EventEncoder", "chunk", "sse"]


def sse(revision: int, event: str, data: bytes) -> bytes:
    """One Server-Sent Event; `data` is one line of JSON."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (revision, event.encode(), data)


def chunk(payload: bytes) -> bytes:
    """`payload` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class EncodedEvent:
    """An event as SSE bytes, clear and (if it differs) masked; chunk framing made lazily."""

    __slots__ = ("_framed_clear", "_framed_masked", "clear", "masked", "namespace", "revision")

    def __init__(self, revision: int, namespace: str, clear: bytes, masked: bytes | None) -> None:
        self.revision = revision
        self.namespace = namespace
        self.clear = clear
        self.masked = masked
        self._framed_clear: bytes | None = None
        self._framed_masked: bytes | None = None

    def raw(self, secrets: bool) -> bytes:
        return self.clear if secrets or self.masked is None else self.masked

    def framed(self, secrets: bool) -> bytes:
        if secrets or self.masked is None:
            if self._framed_clear is None:
                self._framed_clear = chunk(self.clear)
            return self._framed_clear
        if self._framed_masked is None:
            self._framed_masked = chunk(self.masked)
        return self._framed_masked

    @property
    def size(self) -> int:
        return len(self.clear) + (len(self.masked) if self.masked else 0)


class EventEncoder:
    """Encodes documents into events, masking secrets with the registry's kinds."""

    def __init__(self, registry: KindRegistry) -> None:
        self.registry = registry

    def put(self, document: Document) -> EncodedEvent:
        clear = sse(document.revision, EventName.PUT, _json(document.to_json()))
        kind = self.registry.find(document.kind)
        masked = None
        if kind is not None and kind.secrets:
            masked_doc = document.to_json(kind.mask(document.spec))
            masked = sse(document.revision, EventName.PUT, _json(masked_doc))
        return EncodedEvent(document.revision, document.namespace, clear, masked)

    def delete(self, ns: str, name: str, revision: int) -> EncodedEvent:
        data = _json({"namespace": ns, "name": name, "revision": revision})
        return EncodedEvent(revision, ns, sse(revision, EventName.DELETE, data), None)

    def change(self, change: Change) -> EncodedEvent:
        if change.document is None:
            return self.delete(change.namespace, change.name, change.revision)
        return self.put(change.document)

    def snapshot(
        self, revision: int, namespaces: Iterable[str], documents: list[Document], secrets: bool
    ) -> bytes:
        items = []
        for document in documents:
            kind = self.registry.find(document.kind)
            masked = not secrets and kind is not None and kind.secrets
            items.append(document.to_json(kind.mask(document.spec) if masked and kind else None))
        data = {"revision": revision, "namespaces": sorted(namespaces), "items": items}
        return sse(revision, EventName.SNAPSHOT, _json(data))
