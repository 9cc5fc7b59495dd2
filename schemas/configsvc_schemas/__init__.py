"""The built-in config kinds (import name `configsvc_schemas`; re-exported by the SDK).

Each kind is a pydantic model of a document's `spec`. The models ignore unknown fields, so
that an older SDK reads documents written for a newer schema; the service validates writes
with `extra="forbid"`, so a typo is refused.
"""

from configsvc_schemas._base import MASK, SECRET_MARK, KindModel
from configsvc_schemas.auth_keys import AuthKey, AuthKeys, KeyState
from configsvc_schemas.model_endpoints import (
    Adaptive,
    Breaker,
    Endpoint,
    ModelEndpoints,
    Retry,
    Task,
    TaskRetry,
    TaskTimeout,
    Timeout,
)
from configsvc_schemas.rate_limits import Limit, RateLimits

BUILTIN_KINDS: dict[str, type[KindModel]] = {
    "ModelEndpoints": ModelEndpoints,
    "RateLimits": RateLimits,
    "AuthKeys": AuthKeys,
}
"""The kinds every service knows, by the name used in a document's `kind` field."""

__all__ = [
    "BUILTIN_KINDS",
    "MASK",
    "SECRET_MARK",
    "Adaptive",
    "AuthKey",
    "AuthKeys",
    "Breaker",
    "Endpoint",
    "KeyState",
    "KindModel",
    "Limit",
    "ModelEndpoints",
    "RateLimits",
    "Retry",
    "Task",
    "TaskRetry",
    "TaskTimeout",
    "Timeout",
]
