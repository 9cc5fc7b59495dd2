"""Bringing data written by earlier releases to the current key layout, in place.

Layout 1 (releases up to 0.1) kept each current spec twice: in the document key and under
the version's history spec key. Layout 2 keeps it once, under the spec key; the document key
holds metadata only. Readers understand both, so the migration can run at any time, while
the service serves: each document key is rewritten with a compare-and-set on its revision
(a document written meanwhile is already in layout 2), and the spec key is written in the
same transaction if it is missing. A rewrite changes nothing a reader sees, and the fan-out
publishes no event for it. The layout marker records that the migration completed.
"""

from __future__ import annotations

import logging

from configsvc.store.etcd_client import EtcdKV, mod_revision_is, prefix_end, put_op, range_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import DocumentHead, dumps

log = logging.getLogger("configsvc.migrate")

LAYOUT = 2
"""The key layout this release writes."""


class NewerLayout(Exception):
    """The store was written by a newer release, whose layout this one cannot read."""


async def migrate(kv: EtcdKV, layout: KeyLayout) -> int:
    """Rewrite every layout-1 document key; returns how many were rewritten.

    Raises `NewerLayout` when the store's marker names a layout newer than this release's.
    """
    marker = await kv.range(layout.layout_marker())
    if marker.kvs:
        found = int(marker.kvs[0].value)
        if found > LAYOUT:
            raise NewerLayout(
                f"the store holds key layout {found}, written by a newer configsvc; this "
                f"release reads layout {LAYOUT} and older: upgrade configsvc"
            )
        if found == LAYOUT:
            return 0
    root = layout.docs_root()
    response = await kv.range(root, prefix_end(root))
    rewritten = 0
    for item in response.kvs:
        parsed = layout.parse_doc(item.key)
        if parsed is None or not parsed[1]:
            continue
        head = DocumentHead.from_stored(*parsed, item.value, item.mod_revision)
        if head.legacy_spec is None:
            continue
        ns, name = parsed
        document = head.document(head.legacy_spec)
        spec_key = layout.history_spec(ns, name, head.version)
        spec = dumps(head.legacy_spec)
        current = await kv.txn([], [range_op(spec_key)])
        ops = [put_op(item.key, document.stored_value())]
        if not current.responses[0].response_range.kvs:
            ops.insert(0, put_op(spec_key, spec))
        answer = await kv.txn([mod_revision_is(item.key, item.mod_revision)], ops)
        rewritten += 1 if answer.succeeded else 0
    await kv.txn([], [put_op(layout.layout_marker(), str(LAYOUT).encode())])
    if rewritten:
        log.info("migrated %d document keys to key layout %d", rewritten, LAYOUT)
    return rewritten
