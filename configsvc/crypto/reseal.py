"""Re-sealing every stored secret with the active key: after a key rotation, and to seal
secrets stored in clear before a keyring was loaded.

Each spec key (every version of every document) is read, opened and, when a secret in it is
in clear or sealed with another key, written back sealed with the active key, with a
compare-and-set on that key (a spec key is never otherwise rewritten). Safe while the
service serves and writes flow; run it again at any time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from configsvc.crypto.sealing import key_id_of, sealed_strings
from configsvc.store.etcd_client import EtcdKV, mod_revision_is, prefix_end, put_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import HistoryRecord
from configsvc.store.spec_codec import SpecCodec

log = logging.getLogger("configsvc.secrets")

PAGE = 256
"""Spec keys read per range read."""


@dataclass
class ResealResult:
    examined: int = 0
    rewritten: int = 0
    keys_in_use: set[str] = field(default_factory=set)


async def reseal(kv: EtcdKV, layout: KeyLayout, codec: SpecCodec) -> ResealResult:
    """Seal every stored secret with the active key; what was done."""
    sealer = codec.sealer
    result = ResealResult()
    if sealer is None:
        return result
    root = layout.history_spec_all()
    start, end = root, prefix_end(root)
    while True:
        page = await kv.range(start, end, limit=PAGE)
        for item in page.kvs:
            parsed = layout.split_version_key(item.key[len(root) :].decode())
            if parsed is None:
                continue
            result.examined += 1
            ns, name, version = parsed
            kind = await _kind_of(kv, layout, ns, name, version)
            spec = codec.decode(ns, name, item.value)
            stored = codec.encode(ns, name, kind, spec)
            # a fresh encoding seals every secret with the active key: nothing to do when
            # the stored one already has exactly those
            if _sealed_ids(item.value) == _sealed_ids(stored):
                result.keys_in_use |= set(_sealed_ids(item.value))
                continue
            answer = await kv.txn(
                [mod_revision_is(item.key, item.mod_revision)], [put_op(item.key, stored)]
            )
            if answer.succeeded:
                result.rewritten += 1
            result.keys_in_use |= set(_sealed_ids(stored))
        if not page.more:
            break
        start = page.kvs[-1].key + b"\0"
    log.info("re-sealed %d of %d stored specs", result.rewritten, result.examined)
    return result


def _sealed_ids(raw: bytes) -> list[str]:
    """The key names of the sealed values in a stored spec, sorted."""
    return sorted(
        key_id_of(container[key]) or "" for _loc, container, key in sealed_strings(json.loads(raw))
    )


async def _kind_of(kv: EtcdKV, layout: KeyLayout, ns: str, name: str, version: int) -> str:
    response = await kv.range(layout.history(ns, name, version))
    if not response.kvs:
        return ""
    record = HistoryRecord.from_stored(ns, name, response.kvs[0].value, 0)
    return record.kind or ""
