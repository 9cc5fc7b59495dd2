"""Reading documents whole: each document key's metadata joined with its version's spec.

A document key holds the metadata of the current version; the spec is stored once, under
that version's history spec key. A read takes the document keys in one range read, then the
specs in range reads pinned at that read's revision, so the result is the store as it was at
one revision. Only plain range reads are used: etcd keeps answering them when it is over its
space quota, when it refuses every transaction, read-only ones included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from configsvc.store.etcd_client import EtcdKV, RevisionGone, prefix_end
from configsvc.store.keys import KeyLayout
from configsvc.store.records import Document, DocumentHead
from configsvc.store.spec_codec import SpecCodec

PINNED_READ_ATTEMPTS = 3
"""Times a read is started over when etcd compacted its revision while it ran."""


class MissingSpec(Exception):
    """A document's spec key is absent: the store is damaged (or was edited by hand)."""


class DocumentReads:
    """Whole documents from the store, each read at one revision."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout, codec: SpecCodec) -> None:
        self.kv = kv
        self.layout = layout
        self.codec = codec

    async def document(self, ns: str, name: str) -> Document | None:
        """The current document, or None."""
        for attempt in range(PINNED_READ_ATTEMPTS):
            response = await self.kv.range(self.layout.doc(ns, name))
            if not response.kvs:
                return None
            kv = response.kvs[0]
            head = DocumentHead.from_stored(ns, name, kv.value, kv.mod_revision)
            try:
                return (await self.join([head], response.header.revision))[0]
            except RevisionGone:
                if attempt == PINNED_READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def namespaces(
        self, namespaces: Sequence[str], *, revision: int = 0
    ) -> tuple[int, dict[str, tuple[int, list[Document]]]]:
        """`(revision, {ns: (etag_revision, documents)})`: every document of `namespaces`
        as it was at one revision (`revision`, or the current one)."""
        for attempt in range(PINNED_READ_ATTEMPTS):
            try:
                return await self._namespaces(namespaces, revision)
            except RevisionGone:
                if attempt == PINNED_READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _namespaces(
        self, namespaces: Sequence[str], revision: int
    ) -> tuple[int, dict[str, tuple[int, list[Document]]]]:
        heads: dict[str, list[DocumentHead]] = {}
        etags: dict[str, int] = {}
        for ns in namespaces:
            prefix = self.layout.namespace(ns)
            response = await self.kv.range(prefix, prefix_end(prefix), revision=revision)
            revision = revision or response.header.revision
            etags[ns] = 0
            heads[ns] = []
            for kv in response.kvs:
                name = kv.key[len(prefix) :].decode()
                if name:
                    heads[ns].append(DocumentHead.from_stored(ns, name, kv.value, kv.mod_revision))
                else:  # the namespace marker
                    etags[ns] = kv.mod_revision
        result: dict[str, tuple[int, list[Document]]] = {}
        for ns in namespaces:
            result[ns] = (etags[ns], await self.join(heads[ns], revision))
        return revision, result

    async def join(self, heads: Sequence[DocumentHead], revision: int) -> list[Document]:
        """The documents of `heads`, with their specs read at `revision`."""
        specs = await asyncio.gather(*(self._spec(head, revision) for head in heads))
        return [head.document(spec) for head, spec in zip(heads, specs, strict=True)]

    async def _spec(self, head: DocumentHead, revision: int) -> dict[str, Any]:
        if head.legacy_spec is not None:
            return head.legacy_spec
        key = self.layout.history_spec(head.namespace, head.name, head.version)
        response = await self.kv.range(key, revision=revision)
        if not response.kvs:
            raise MissingSpec(f"{head.namespace}/{head.name} version {head.version} has no spec")
        return self.codec.decode(head.namespace, head.name, response.kvs[0].value)
