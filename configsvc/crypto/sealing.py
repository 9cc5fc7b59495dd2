"""Sealing a spec's secret fields with AES-256-GCM, the key's name stored with each value.

A sealed value is a string `enc:v1:<key id>:<base64 of nonce + ciphertext + tag>` in place
of the secret. Its associated data is the document's address and the field's location
(`prod/chat-models#endpoints/local/api_key`), so a sealed value copied to another place
does not open. Opening is location-agnostic: every string with the prefix is opened,
wherever it is, so values sealed under an earlier schema still open.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

from configsvc_schemas.secrets import SecretPath, locations
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from configsvc.crypto.keyring import Keyring

SEALED_PREFIX = "enc:v1:"
NONCE_BYTES = 12
SecretPaths = Callable[[str], tuple[SecretPath, ...]]
"""The secret paths of a kind, by its name."""


class SealingError(Exception):
    """A sealed value cannot be opened: its key is not in the ring, or it was altered."""


class Sealer:
    """Seals and opens the secret values of specs with a keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def active(self) -> str:
        return self.keyring.active

    def seal_value(self, value: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active].encrypt(nonce, value.encode(), context.encode())
        encoded = base64.b64encode(nonce + sealed).decode()
        return f"{SEALED_PREFIX}{self.active}:{encoded}"

    def open_value(self, value: str, context: str) -> str:
        key_id, _, encoded = value.removeprefix(SEALED_PREFIX).partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SealingError(
                f"a secret is sealed with key {key_id!r}, which the key file "
                f"{self.keyring.path or ''} does not hold"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, ValueError):
            raise SealingError(
                f"a secret sealed with key {key_id!r} does not open: the key differs from "
                "the one it was sealed with, or the value was altered"
            ) from None


def key_id_of(value: str) -> str | None:
    """The key name of a sealed value, or None for a value that is not sealed."""
    if not value.startswith(SEALED_PREFIX):
        return None
    return value.removeprefix(SEALED_PREFIX).partition(":")[0]


def context_of(address: str, loc: SecretPath) -> str:
    return f"{address}#{'/'.join(loc)}"


def seal_spec(
    sealer: Sealer, address: str, spec: dict[str, Any], paths: tuple[SecretPath, ...]
) -> dict[str, Any]:
    """A copy of `spec` with each clear secret at `paths` sealed (`spec` if none)."""
    found = [
        (loc, container, key)
        for path in paths
        for loc, container, key in locations(spec, path)
        if isinstance(container[key], str) and key_id_of(container[key]) is None
    ]
    if not found:
        return spec
    sealed = copy.deepcopy(spec)
    for path in paths:
        for loc, container, key in locations(sealed, path):
            value = container[key]
            if isinstance(value, str) and key_id_of(value) is None:
                container[key] = sealer.seal_value(value, context_of(address, loc))
    return sealed


def sealed_strings(node: Any, loc: SecretPath = ()) -> Iterator[tuple[SecretPath, Any, Any]]:
    """Each (location, container, key) holding a sealed string, anywhere in `node`."""
    items: Any = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        here = (*loc, str(key))
        if isinstance(child, str):
            if child.startswith(SEALED_PREFIX):
                yield here, node, key
        else:
            yield from sealed_strings(child, here)


def open_spec(sealer: Sealer | None, address: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with every sealed string opened, in place (`SealingError` if one does not)."""
    for loc, container, key in list(sealed_strings(spec)):
        if sealer is None:
            raise SealingError(
                f"{address} holds secrets sealed at rest, and no secret key file is loaded "
                "(CONFIGSVC_SECRET_KEY_FILE)"
            )
        container[key] = sealer.open_value(container[key], context_of(address, loc))
    return spec
