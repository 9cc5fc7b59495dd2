"""Which keys sealed the store's secrets, checked at start: a missing or wrong key stops the
service with a clear message, before it serves anything.

The store keeps, under `{prefix}meta/secret-keys`, a check value per key that has sealed
something: a known text sealed with that key. A service whose keyring lacks one of those
keys, or holds a different key under the same name, refuses to start; so does a service
with no keyring over a store that holds sealed secrets (it would serve them as garbage).
"""

from __future__ import annotations

import json

from configsvc.crypto.keyring import KeyringError
from configsvc.crypto.sealing import Sealer, SealingError
from configsvc.store.etcd_client import EtcdKV, mod_revision_is, put_op
from configsvc.store.keys import KeyLayout

CHECK_TEXT = "configsvc secret key check"
CHECK_CONTEXT = "meta/secret-keys"
CHECK_ATTEMPTS = 8


async def check_store_keys(kv: EtcdKV, layout: KeyLayout, sealer: Sealer | None) -> None:
    """Raise `KeyringError` unless `sealer` opens every key the store was sealed with; then
    record the active key's check value."""
    for _attempt in range(CHECK_ATTEMPTS):
        response = await kv.range(layout.secret_keys())
        checks: dict[str, str] = json.loads(response.kvs[0].value)["checks"] if response.kvs else {}
        revision = response.kvs[0].mod_revision if response.kvs else 0
        if sealer is None:
            if checks:
                raise KeyringError(
                    "the store holds secrets sealed at rest (keys "
                    f"{', '.join(sorted(checks))}); give their key file with "
                    "CONFIGSVC_SECRET_KEY_FILE"
                )
            return
        for key_id, check in sorted(checks.items()):
            if sealer.keyring.key(key_id) is None:
                raise KeyringError(
                    f"the store holds secrets sealed with key {key_id!r}, which the key file "
                    f"{sealer.keyring.path} does not hold: give the key file they were "
                    "sealed with (with that key in it)"
                )
            try:
                sealer.open_value(check, CHECK_CONTEXT)
            except SealingError:
                raise KeyringError(
                    f"key {key_id!r} of {sealer.keyring.path} is not the key of that name "
                    "the store's secrets were sealed with"
                ) from None
        if sealer.active in checks:
            return
        checks[sealer.active] = sealer.seal_value(CHECK_TEXT, CHECK_CONTEXT)
        value = json.dumps({"checks": checks}, sort_keys=True).encode()
        answer = await kv.txn(
            [mod_revision_is(layout.secret_keys(), revision)],
            [put_op(layout.secret_keys(), value)],
        )
        if answer.succeeded:
            return
    raise KeyringError("the store's key record keeps changing; try again")


async def forget_unused_keys(kv: EtcdKV, layout: KeyLayout, used: set[str]) -> None:
    """Drop the check values of keys that no stored value uses any more."""
    response = await kv.range(layout.secret_keys())
    if not response.kvs:
        return
    checks: dict[str, str] = json.loads(response.kvs[0].value)["checks"]
    kept = {key_id: check for key_id, check in checks.items() if key_id in used}
    if kept != checks:
        value = json.dumps({"checks": kept}, sort_keys=True).encode()
        await kv.txn(
            [mod_revision_is(layout.secret_keys(), response.kvs[0].mod_revision)],
            [put_op(layout.secret_keys(), value)],
        )
