"""`AuthKeys`: the API keys that callers of a service may present, stored as sha256 hashes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, Field, model_validator

from configsvc_schemas._base import KindModel, field_error

SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"


class KeyState(enum.StrEnum):
    """`active` and `retiring` keys pass; `revoked` keys fail. Retiring marks a rotation."""

    ACTIVE = "active"
    RETIRING = "retiring"
    REVOKED = "revoked"


class AuthKey(KindModel):
    """One caller key: its id, the sha256 of the key (never the key), scopes and validity."""

    id: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=SHA256_HEX_PATTERN, description="64 lowercase hex characters")
    scopes: list[str] = Field(default_factory=list)
    state: KeyState = KeyState.ACTIVE
    not_before: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        """True when the key's state and validity window admit it at `moment`."""
        if self.state == KeyState.REVOKED:
            return False
        if self.not_before is not None and moment < self.not_before:
            return False
        return self.expires_at is None or moment < self.expires_at


class AuthKeys(KindModel):
    """The keys a service accepts; ids are unique."""

    keys: list[AuthKey] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for index, key in enumerate(self.keys):
            if key.id in seen:
                raise field_error(("keys", index, "id"), "duplicate key id", key.id)
            seen.add(key.id)
        return self
