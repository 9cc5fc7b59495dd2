"""Reclaiming etcd space: trim history, compact, defragment, clear the NOSPACE alarm.

It only deletes and maintains, with calls etcd accepts while it is over its quota (plain
deletes, compaction, defragmentation, alarms), so it is the way out of a full store. Safe
while writes flow: only versions older than each document's last `keep_versions` go, and
a write racing it adds newer ones.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from configsvc.store.etcd_client import EtcdKV, RevisionGone
from configsvc.store.keys import KeyLayout
from configsvc.store.trimming import apply_trim, describe, plan_trim, stored_versions

log = logging.getLogger("configsvc.reclaim")


@dataclass(frozen=True)
class ReclaimResult:
    freed_bytes: int
    """How much smaller the answering member's database file got."""
    db_bytes: int
    versions_removed: int
    alarm_cleared: bool
    documents: dict[str, int] = field(default_factory=dict)
    """`{"ns/name": first version kept}` of each document whose history was trimmed."""


async def reclaim(kv: EtcdKV, layout: KeyLayout, keep_versions: int) -> ReclaimResult:
    """Keep each document's last `keep_versions` versions (>= 1), then give the space
    back: compact etcd's history, defragment every member, clear the NOSPACE alarm."""
    if keep_versions < 1:
        raise ValueError("keep_versions must be >= 1")
    before = int((await kv.member_status()).dbSize)
    plan = plan_trim(await stored_versions(kv, layout), keep_versions=keep_versions)
    await apply_trim(kv, layout, plan)
    revision = await kv.current_revision()
    with contextlib.suppress(RevisionGone):  # already compacted that far
        await kv.compact(revision)
    for member in kv.members():
        try:
            await member.defragment()
        finally:
            await member.close()
    cleared = await kv.disarm_nospace()
    after = int((await kv.member_status()).dbSize)
    log.info("reclaim: %d versions removed, database %d -> %d bytes", plan.versions, before, after)
    return ReclaimResult(
        freed_bytes=max(0, before - after),
        db_bytes=after,
        versions_removed=plan.versions,
        alarm_cleared=cleared > 0,
        documents=describe(plan),
    )
