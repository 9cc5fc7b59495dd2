"""Backups of a store: every key that holds configuration, read at one etcd revision, as
JSON lines; and restoring them into an empty store.

A backup holds documents, history, user kinds, tokens (their hashes), the audit log and the
store's metadata, with secrets still sealed (a restore needs the keys they were sealed
with), but not console sessions or fleet reports, which are passing state. The first line
says what follows:

    {"format": "configsvc-backup", "version": 1, "layout": 2, "revision": R,
     "created_at": "…", "sealed_with": ["k2026…"], "keys": N}
    {"k": "doc/prod/chat-models", "v": "<base64 of the value>"}
    …

Restoring writes the keys back in batched transactions, each document key last and in the
same transaction as its current spec, so that open watch streams see each document as a
change. Versions, history and audit come back exactly; store revisions are new.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from configsvc.crypto.sealing import Sealer
from configsvc.errors import BadRequest, Conflict
from configsvc.store.etcd_client import EtcdKV, prefix_end, put_op
from configsvc.store.keys import DOC_FAMILY, KeyLayout
from configsvc.store.migrate import LAYOUT
from configsvc.store.records import DocumentHead, utc_now

FORMAT = "configsvc-backup"
VERSION = 1
BACKED_UP = frozenset(
    {"doc", "ver", "hist", "hspec", "tok", "kind", "kuse", "khist", "kschema", "audit", "meta",
     "rollout"}
)  # fmt: skip
"""Key families that hold configuration (sessions and fleet reports are passing state)."""
CONFIGURATION = ("doc", "hist", "kind", "tok")
"""Families whose keys make a store "not empty" for a restore."""
PAGE = 500
MAX_BATCH_OPS = 64
MAX_BATCH_BYTES = 1_000_000
MAX_LINE_BYTES = 4 * 1024 * 1024


@dataclass
class RestoreResult:
    keys: int = 0
    documents: int = 0
    by_family: dict[str, int] = field(default_factory=dict)


async def dump(kv: EtcdKV, layout: KeyLayout, sealer: Sealer | None) -> AsyncIterator[bytes]:
    """The backup of the store under `layout.prefix`, line by line, at one revision."""
    prefix = layout.prefix.encode()
    start, end = prefix, prefix_end(prefix)
    first = await kv.range(start, end, keys_only=True, limit=1)
    revision = first.header.revision
    count = (await kv.range(start, end, revision=revision, keys_only=True)).kvs
    keys = [item.key for item in count if _family(item.key[len(prefix) :]) in BACKED_UP]
    checks = await kv.range(layout.secret_keys(), revision=revision)
    sealed_with = sorted(json.loads(checks.kvs[0].value)["checks"]) if checks.kvs else []
    yield _line(
        {
            "format": FORMAT,
            "version": VERSION,
            "layout": LAYOUT,
            "revision": revision,
            "created_at": utc_now(),
            "sealed_with": sealed_with,
            "keys": len(keys),
        }
    )
    while True:
        page = await kv.range(start, end, revision=revision, limit=PAGE)
        for item in page.kvs:
            rest = item.key[len(prefix) :]
            if _family(rest) in BACKED_UP:
                yield _line({"k": rest.decode(), "v": base64.b64encode(item.value).decode()})
        if not page.more:
            return
        start = page.kvs[-1].key + b"\0"


def _family(rest: bytes) -> str:
    return rest.split(b"/", 1)[0].decode()


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def read_header(line: bytes, sealer: Sealer | None) -> dict[str, Any]:
    """The header of a backup; 400 for anything else, 409 for keys this service lacks."""
    try:
        header = json.loads(line)
    except ValueError:
        raise BadRequest("not a configsvc backup: its first line is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadRequest("not a configsvc backup (its first line names no configsvc-backup)")
    if header.get("version") != VERSION or header.get("layout", 0) > LAYOUT:
        raise BadRequest(
            f"a backup of format {header.get('version')}, layout {header.get('layout')}: "
            f"this release reads format {VERSION}, layout {LAYOUT} and older; upgrade configsvc"
        )
    needed = [str(k) for k in header.get("sealed_with") or []]
    missing = [key for key in needed if sealer is None or sealer.keyring.key(key) is None]
    if missing:
        raise Conflict(
            f"the backup's secrets are sealed with key(s) {', '.join(missing)}, which this "
            "service does not hold: start it with the key file they were sealed with "
            "(CONFIGSVC_SECRET_KEY_FILE); nothing was restored"
        )
    return header


def parse_entry(line: bytes) -> tuple[str, bytes]:
    """`(key relative to the prefix, value)` of one line; 400 when malformed."""
    try:
        entry = json.loads(line)
        key, value = str(entry["k"]), base64.b64decode(entry["v"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise BadRequest("a line of the backup is not a key and a base64 value") from None
    if _family(key.encode()) not in BACKED_UP or ".." in key or key.startswith("/"):
        raise BadRequest(f"the backup holds a key configsvc does not write: {key[:80]!r}")
    return key, value


def check_complete(header: dict[str, Any], keys: int) -> None:
    """400 unless the backup held as many keys as its header says (a cut-off file)."""
    expected = header.get("keys")
    if isinstance(expected, int) and keys != expected:
        raise BadRequest(
            f"the backup is incomplete: its header announces {expected} keys, it holds "
            f"{keys} (a cut-off download or copy?); nothing was restored"
        )


async def is_empty(kv: EtcdKV, layout: KeyLayout) -> bool:
    """Whether the store holds no documents, history, user kinds or tokens."""
    for family in CONFIGURATION:
        root = f"{layout.prefix}{family}/".encode()
        if (await kv.range(root, prefix_end(root), keys_only=True, limit=1)).kvs:
            return False
    return True


async def wipe(kv: EtcdKV, layout: KeyLayout) -> None:
    """Delete every backed-up family under the prefix (a forced restore)."""
    for family in sorted(BACKED_UP):
        root = f"{layout.prefix}{family}/".encode()
        await kv.delete_range(root, prefix_end(root))


async def read_meta(kv: EtcdKV, layout: KeyLayout) -> list[tuple[bytes, bytes]]:
    """The store's own metadata (layout marker, secret-key checks), to put back with
    `put_back` when a restore fails."""
    root = f"{layout.prefix}meta/".encode()
    return [(item.key, item.value) for item in (await kv.range(root, prefix_end(root))).kvs]


async def put_back(kv: EtcdKV, meta: list[tuple[bytes, bytes]]) -> None:
    """Write metadata read by `read_meta` again."""
    if meta:
        await kv.txn([], [put_op(key, value) for key, value in meta])


class Restorer:
    """Writes a backup's keys, in batches; document keys wait for the end."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout) -> None:
        self._kv = kv
        self._layout = layout
        self._batch: list[Any] = []
        self._batch_bytes = 0
        self._documents: list[tuple[str, bytes]] = []
        self.result = RestoreResult()

    async def add(self, key: str, value: bytes) -> None:
        family = key.split("/", 1)[0]
        self.result.keys += 1
        self.result.by_family[family] = self.result.by_family.get(family, 0) + 1
        if family == DOC_FAMILY:
            self._documents.append((key, value))  # metadata: small
            return
        op = put_op(self._layout.prefix.encode() + key.encode(), value)
        if self._batch and (
            len(self._batch) >= MAX_BATCH_OPS or self._batch_bytes + len(value) > MAX_BATCH_BYTES
        ):
            await self._flush()
        self._batch.append(op)
        self._batch_bytes += len(value)

    async def finish(self) -> RestoreResult:
        """Write what is left, then each document with its current spec."""
        await self._flush()
        prefix = self._layout.prefix.encode()
        for key, value in self._documents:
            parsed = self._layout.split_doc(key.split("/", 1)[1])
            ops = []
            if parsed is not None and parsed[1]:
                head = DocumentHead.from_stored(*parsed, value, 0)
                spec_key = self._layout.history_spec(*parsed, head.version)
                spec = await self._kv.range(spec_key)
                if spec.kvs:  # again, in the document's transaction: a change for watchers
                    ops.append(put_op(spec_key, spec.kvs[0].value))
                self.result.documents += 1
            ops.append(put_op(prefix + key.encode(), value))
            await self._kv.txn([], ops)
        return self.result

    async def _flush(self) -> None:
        if self._batch:
            await self._kv.txn([], self._batch)
            self._batch, self._batch_bytes = [], 0
