"""How a spec is stored: JSON, its secret fields sealed when a keyring is loaded.

Every place that writes or reads a stored spec goes through one `SpecCodec`, so a secret
is sealed before it reaches etcd and opened only in the service's memory.
"""

from __future__ import annotations

import json
from typing import Any

from configsvc.crypto.keyring import load_keyring
from configsvc.crypto.sealing import (
    SEALED_PREFIX,
    Sealer,
    SealingError,
    SecretPaths,
    open_spec,
    seal_spec,
)
from configsvc.store.records import dumps

_SEALED_MARK = b'"' + SEALED_PREFIX.encode()


def _no_secrets(_kind: str) -> tuple[()]:
    return ()


class SpecCodec:
    """Encodes specs for the store (sealing secrets) and decodes them (opening them)."""

    def __init__(
        self, sealer: Sealer | None = None, secret_paths: SecretPaths = _no_secrets
    ) -> None:
        self.sealer = sealer
        self.secret_paths = secret_paths

    def encode(self, ns: str, name: str, kind: str, spec: dict[str, Any]) -> bytes:
        if self.sealer is not None:
            spec = seal_spec(self.sealer, f"{ns}/{name}", spec, self.secret_paths(kind))
        return dumps(spec)

    def decode(self, ns: str, name: str, raw: bytes) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(raw)
        if _SEALED_MARK not in raw:
            return spec
        try:
            return open_spec(self.sealer, f"{ns}/{name}", spec)
        except SealingError:
            # sealed with a key added to the key file since it was read (a rotation run
            # by another instance): read the file again, once
            if not self.reload():
                raise
            return open_spec(self.sealer, f"{ns}/{name}", json.loads(raw))

    def reload(self) -> bool:
        """Read the key file again; whether the keyring changed."""
        path = self.sealer.keyring.path if self.sealer is not None else None
        if path is None:
            return False
        keyring = load_keyring(path)
        if self.sealer is not None and keyring == self.sealer.keyring:
            return False
        self.sealer = Sealer(keyring)
        return True
