"""The service's exception tree; each error knows its HTTP status and error code.

    ConfigsvcError
    ├── EtcdStartError          the embedded etcd could not be found or started
    └── ApiError                answered as {"error": {"code", "message", "details"}}
        ├── BadRequest          400 malformed body or parameter
        ├── Unauthorized        401 no or bad token
        ├── Forbidden           403 role or namespace not allowed
        ├── NotFound            404 unknown document, version, kind or token
        ├── Conflict            409 create-only write of a document that exists
        ├── PreconditionFailed  412 If-Match revision does not match
        ├── PayloadTooLarge     413 body or write over the size limit
        ├── TooManyAttempts     429 too many refused tokens from one address (auth_throttle)
        ├── ValidationFailed    422 schema violations, each with its field path
        ├── StoreUnavailable    503 etcd does not answer in time (outcome of a write unknown)
        └── StoreFull           507 etcd is out of space: nothing was written

Messages never hold a secret value: validation details carry a field path and a message,
never the input.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError


class ConfigsvcError(Exception):
    """Base of every error raised by configsvc."""


class EtcdStartError(ConfigsvcError):
    """The embedded etcd could not be found, started, or refuses the data dir."""


class ApiError(ConfigsvcError):
    """An error with an HTTP status, a stable code and optional details."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body of the contract."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PreconditionFailed(ApiError):
    status = 412
    code = "precondition_failed"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"


class StoreUnavailable(ApiError):
    status = 503
    code = "store_unavailable"


class StoreFull(ApiError):
    status = 507
    code = "store_full"


def validation_failed(
    message: str, exc: ValidationError, prefix: tuple[str, ...] = ()
) -> ValidationFailed:
    """A 422 whose details are pydantic's errors, each at `prefix` + its path, without the
    input value (it may be a secret)."""
    details = [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return ValidationFailed(message, details)
