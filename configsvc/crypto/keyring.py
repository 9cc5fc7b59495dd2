"""The keyring that seals secret values at rest: named AES-256 keys, one of them active.

A key file is JSON, mode 0600:

    {"active": "k20261206-3f9a", "keys": {"k20261206-3f9a": "<base64 of 32 bytes>", ...}}

New values are sealed with the active key; values sealed with any key of the ring open. To
rotate: add a new key and make it active (`configsvc secrets rotate-key` does both for the
embedded default's `<data-dir>/secret.key`), let every instance read it, then re-seal
everything (`POST /v1/admin/secrets/rotate`); the old key may go once nothing uses it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from configsvc.errors import ConfigsvcError

KEY_BYTES = 32
KEY_FILE_NAME = "secret.key"
KEY_FILE_ENV = "CONFIGSVC_SECRET_KEY_FILE"
KEY_FILE_MODE = 0o600


class KeyringError(ConfigsvcError):
    """The key file is missing, unreadable or malformed: the service does not start."""


@dataclass(frozen=True)
class Keyring:
    """Named keys and the active one's name."""

    active: str
    keys: dict[str, bytes]
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"the active key {self.active!r} is not among the keys")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES or ":" in key_id or not key_id:
                raise KeyringError(f"key {key_id!r} is not a {KEY_BYTES}-byte key with a name")

    def key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    def with_new_active(self) -> Keyring:
        """This ring with a fresh key added and made active."""
        key_id = new_key_id()
        return Keyring(key_id, {**self.keys, key_id: secrets.token_bytes(KEY_BYTES)}, self.path)

    def to_json(self) -> str:
        keys = {k: base64.b64encode(v).decode() for k, v in self.keys.items()}
        return json.dumps({"active": self.active, "keys": keys}, indent=2) + "\n"


def new_key_id() -> str:
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def load_keyring(path: Path) -> Keyring:
    """The keyring in `path`; `KeyringError` with what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyringError(f"cannot read the secret key file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
        return Keyring(str(data["active"]), keys, path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyringError(
            f"the secret key file {path} is not a configsvc keyring: {exc}"
        ) from None


def loosely_protected(path: Path) -> bool:
    """Whether others than the owner may read `path`."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_keyring(keyring: Keyring, path: Path) -> None:
    """Write `keyring` to `path` (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(keyring.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_keyring(path: Path) -> Keyring:
    """The keyring at `path`, generated there first if there is none (the embedded default)."""
    if not path.exists():
        key_id = new_key_id()
        generated = Keyring(key_id, {key_id: secrets.token_bytes(KEY_BYTES)}, path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError:
            return load_keyring(path)  # another start made it meanwhile
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(generated.to_json())
            f.flush()
            os.fsync(f.fileno())
    return load_keyring(path)
