"""Sealing the cache file's documents with a key derived from the client's token.

The cache may hold secret values (an endpoint's `api_key`): on disk they are sealed with
AES-256-GCM under a key derived from the token (HKDF-SHA256, a random salt per file), so
the file, its backups and copies are useless without the token. A client with another
token (a rotated one) cannot open an older file: it ignores it, with a warning, and writes
a new one once the service answers.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32
KDF_INFO = b"configsvc-client cache v2"


class CacheSealError(ValueError):
    """The cache cannot be opened with this token (another token, or altered)."""


def _key(token: str, salt: bytes) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=KDF_INFO)
    return kdf.derive(token.encode())


def seal(token: str, plaintext: bytes, context: bytes) -> dict[str, str]:
    """`plaintext` sealed for the cache file; `context` (the file's header) is bound to it."""
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key(token, salt)).encrypt(nonce, plaintext, context)
    encode = base64.b64encode
    return {"kdf": "hkdf-sha256", "salt": encode(salt).decode(), "nonce": encode(nonce).decode(),
            "data": encode(sealed).decode()}  # fmt: skip


def open_sealed(token: str, box: dict[str, str], context: bytes) -> bytes:
    """What `seal` sealed; `CacheSealError` with another token or an altered file."""
    try:
        salt, nonce, data = (base64.b64decode(box[k]) for k in ("salt", "nonce", "data"))
        return AESGCM(_key(token, salt)).decrypt(nonce, data, context)
    except (InvalidTag, KeyError, ValueError, TypeError):
        raise CacheSealError("the cache was sealed with another token, or altered") from None
