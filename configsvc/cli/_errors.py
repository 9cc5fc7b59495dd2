"""Failures the CLI reports as one line on stderr with exit status 1.

    CliError            a failure the user can act on
    ├── ServiceError    the service answered with an error body (status, code, details)
    └── FileError       a local file cannot be read or parsed (with its line)

Usage errors (a bad option or argument) are typer's and exit with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VALUE_ERROR_PREFIX = "Value error, "


class CliError(Exception):
    """A failure with a message fit for one line of stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldError:
    """One schema violation: the field path (`spec.endpoints.local.base_url`) and why."""

    loc: str
    msg: str

    @classmethod
    def from_json(cls, detail: Any) -> FieldError:
        if not isinstance(detail, dict):
            return cls("", str(detail))
        loc = detail.get("loc") or []
        path = ".".join(str(part) for part in loc) if isinstance(loc, list) else str(loc)
        msg = str(detail.get("msg", "")).removeprefix(VALUE_ERROR_PREFIX)
        document = detail.get("document")
        if document:  # a stored document that a kind's change would not fit
            path = f"{document} {path}".strip()
        return cls(path, msg)

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg


class ServiceError(CliError):
    """An error answer of the service: HTTP status, error code, message, field errors."""

    def __init__(
        self, status: int, code: str, reason: str, details: tuple[FieldError, ...] = ()
    ) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.details = details
        super().__init__(self.summary())

    def summary(self) -> str:
        """`<what>: <message>[: <field>: <why>; …]`, e.g. `refused: spec is not valid: …`."""
        head = f"{STATUS_WORDS.get(self.status, f'HTTP {self.status}')}: {self.reason}"
        if self.details:
            head += ": " + "; ".join(str(detail) for detail in self.details)
        return head


STATUS_WORDS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    412: "precondition failed",
    413: "too large",
    422: "refused",
    503: "service unavailable",
}


class FileError(CliError):
    """A local document file that cannot be read or parsed; `line` is 1-based when known."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
