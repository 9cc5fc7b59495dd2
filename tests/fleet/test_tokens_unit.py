"""CachedTokens: the report route's token records, held briefly and dropped on any change."""

from __future__ import annotations

import asyncio
from typing import Any

from configsvc.fleet.tokens import CachedTokens
from configsvc.store.records import TokenRecord

RECORD = TokenRecord("gw", "reader", ("prod",), False, "0" * 64, "t", "admin")


class SlowStore:
    """Answers get_token when told to, counting the reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.release = asyncio.Event()

    async def get_token(self, name: str) -> TokenRecord | None:
        self.reads += 1
        await self.release.wait()
        return RECORD if name == "gw" else None


async def test_records_are_held_for_the_ttl_then_read_again() -> None:
    store = SlowStore()
    store.release.set()
    now = [0.0]
    tokens = CachedTokens(store, ttl=30, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await tokens.get_token("gw") == RECORD
    now[0] = 29.9
    assert await tokens.get_token("gw") == RECORD and store.reads == 1
    now[0] = 30.0
    assert await tokens.get_token("gw") == RECORD and store.reads == 2
    tokens.forget("gw")
    assert await tokens.get_token("gw") == RECORD and store.reads == 3
    assert await tokens.get_token("nobody") is None
    assert await tokens.get_token("nobody") is None and store.reads == 5  # not held


async def test_a_token_changed_during_a_read_is_not_held() -> None:
    store = SlowStore()
    tokens = CachedTokens(store, ttl=30)  # type: ignore[arg-type]
    reading: Any = asyncio.create_task(tokens.get_token("gw"))
    await asyncio.sleep(0)
    tokens.forget("gw")  # revoked while the read was under way
    store.release.set()
    assert await reading == RECORD
    assert await tokens.get_token("gw") == RECORD
    assert store.reads == 2
