"""What a service does to its store before and just after it serves: migrate the key layout,
check the keys that sealed secrets, seal what is still in clear.

`create_app`'s lifespan runs the checks at once when etcd answers (a failure stops the
start); when etcd does not answer yet, these run in the background until it does.
"""

from __future__ import annotations

import asyncio
import logging
import random

from configsvc.crypto.keyring import KeyringError
from configsvc.crypto.reseal import reseal
from configsvc.crypto.store_keys import check_store_keys, forget_unused_keys
from configsvc.errors import ApiError
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.migrate import NewerLayout, migrate

log = logging.getLogger("configsvc.startup")

RETRY_INITIAL = 0.5
RETRY_MAX = 30.0


async def prepare_when_reachable(store: EtcdConfigStore) -> None:
    """Migrate and check the keys once etcd answers, then re-seal (a background task)."""
    delay = RETRY_INITIAL
    while True:
        try:
            await migrate(store.kv, store.layout)
            await check_store_keys(store.kv, store.layout, store.codec.sealer)
            break
        except (NewerLayout, KeyringError) as exc:
            log.critical("this service cannot use the store: %s", exc)
            return
        except ApiError as exc:
            log.warning("start-up checks not done yet (%s); retrying", exc.message)
        await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter
        delay = min(RETRY_MAX, delay * 2)
    await reseal_when_reachable(store)


async def reseal_when_reachable(store: EtcdConfigStore) -> None:
    """Seal every stored secret with the active key (a background task; retried)."""
    if store.codec.sealer is None:
        return
    delay = RETRY_INITIAL
    while True:
        try:
            result = await reseal(store.kv, store.layout, store.codec)
            in_use = result.keys_in_use | {store.codec.sealer.active}
            await forget_unused_keys(store.kv, store.layout, in_use)
            return
        except ApiError as exc:
            log.warning("sealing stored secrets not done yet (%s); retrying", exc.message)
        await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter
        delay = min(RETRY_MAX, delay * 2)
