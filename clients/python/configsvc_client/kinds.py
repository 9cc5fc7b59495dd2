"""The built-in config kinds, as the SDK reads them (re-exported from `configsvc_schemas`).

These models ignore fields they do not know, so an older SDK keeps reading documents
written against a newer schema. Subclass one to validate more strictly in your service.
"""

from configsvc_schemas import (
    BUILTIN_KINDS,
    MASK,
    Adaptive,
    AuthKey,
    AuthKeys,
    Breaker,
    Endpoint,
    KeyState,
    KindModel,
    Limit,
    ModelEndpoints,
    RateLimits,
    Retry,
    Task,
    TaskRetry,
    TaskTimeout,
    Timeout,
)

__all__ = [
    "BUILTIN_KINDS",
    "MASK",
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
