"""What the service, the CLI and the SDK share (import name `configsvc_schemas`).

- the built-in config kinds, each a pydantic model of a document's `spec` (re-exported by
  the SDK). The models ignore unknown fields, so that an older SDK reads documents written
  for a newer schema; the service validates writes with `extra="forbid"`, so a typo is
  refused;
- `configsvc_schemas.wire`: names, API paths, roles, event names, the error shape;
- `configsvc_schemas.sse`: the Server-Sent Events parser;
- `configsvc_schemas.secrets`: where a kind's secrets sit, and masking them;
- `configsvc_schemas.backoff`: reconnect delays with full jitter.
"""

from configsvc_schemas._base import KindModel
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
from configsvc_schemas.wire import MASK, SECRET_MARK

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
