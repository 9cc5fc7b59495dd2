"""A fleet report as the service takes it: the body's shape, its limits, its scope.

Reports are untrusted input. Every string is bounded and free of control characters, every
count is bounded (`configsvc_schemas.wire`), numbers are strict (no `"7"` for 7). Fields the
service does not know are ignored at every level and not kept, so a newer SDK can report to
an older service and nothing unknown reaches the store. A report must name every namespace
of its documents, and the token must be allowed to read each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from configsvc_schemas.wire import (
    APP_PATTERN,
    INSTANCE_ID_PATTERN,
    MAX_LABELS,
    MAX_REPORT_DOCUMENTS,
    MAX_REPORT_ERROR_LENGTH,
    MAX_REPORT_INTERVAL,
    MAX_REPORT_NAMESPACES,
    MAX_REPORT_TEXT_LENGTH,
    MIN_REPORT_INTERVAL,
    NAME_RULE,
    is_valid_name,
    label_problems,
    split_key,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from configsvc.api.http import parse_body
from configsvc.auth import Principal
from configsvc.errors import Forbidden, ValidationFailed
from configsvc.store.records import dumps

MAX_COUNTER = 2**63 - 1
"""Versions and revisions are int64."""
MAX_PID = 2**31 - 1
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
"""RFC 3339, e.g. `2026-11-22T01:02:03.456Z`."""
MAX_TIME_LENGTH = 40
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
ERROR_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
"""An error may hold tabs and newlines, no other control characters."""
Mode = Literal["streaming", "polling", "cached", "connecting"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class AppliedIn(_Strict):
    """A version the instance applied."""

    version: int = Field(ge=0, le=MAX_COUNTER)
    revision: int = Field(ge=0, le=MAX_COUNTER)
    applied_at: str = Field(pattern=TIME_PATTERN, max_length=MAX_TIME_LENGTH)


class RejectedIn(_Strict):
    """A version the instance refused (its local model rejected it), and why."""

    version: int = Field(ge=0, le=MAX_COUNTER)
    revision: int = Field(ge=0, le=MAX_COUNTER)
    error: str = Field(max_length=MAX_REPORT_ERROR_LENGTH, pattern=ERROR_PATTERN)


class CallsIn(_Strict):
    """What the instance's live helpers did on a rollout's candidate it holds."""

    version: int = Field(ge=0, le=MAX_COUNTER)
    tries: int = Field(ge=0, le=MAX_COUNTER)
    failures: int = Field(ge=0, le=MAX_COUNTER)


class ReportIn(_Strict):
    """`POST /v1/fleet/reports`: what one SDK instance applied and rejected."""

    instance: str = Field(
        pattern=f"^{INSTANCE_ID_PATTERN.pattern}$",
        description="the instance id: `<host>-<pid>-<random hex>` by default",
    )
    app: str | None = Field(default=None, pattern=f"^{APP_PATTERN.pattern}$")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)
    sdk: str | None = Field(default=None, max_length=MAX_REPORT_TEXT_LENGTH, pattern=TEXT_PATTERN)
    host: str | None = Field(default=None, max_length=MAX_REPORT_TEXT_LENGTH, pattern=TEXT_PATTERN)
    pid: int | None = Field(default=None, ge=0, le=MAX_PID)
    mode: Mode
    documents: dict[str, AppliedIn] = Field(
        max_length=MAX_REPORT_DOCUMENTS, description="by `ns/name`: the applied version"
    )
    rejected: dict[str, RejectedIn] = Field(
        default_factory=dict,
        max_length=MAX_REPORT_DOCUMENTS,
        description="by `ns/name`: a version refused by the instance's local model",
    )
    calls: dict[str, CallsIn] = Field(
        default_factory=dict,
        max_length=MAX_REPORT_DOCUMENTS,
        description="by `ns/name`: the live helpers' tries and failed tries on the version "
        "held, while it is a rollout's candidate (a rollout may abort on their error rate)",
    )
    namespaces: list[str] = Field(
        min_length=1, max_length=MAX_REPORT_NAMESPACES, description="the watched namespaces"
    )
    report_interval: float = Field(
        ge=MIN_REPORT_INTERVAL,
        le=MAX_REPORT_INTERVAL,
        description="seconds between reports; 3 missed reports and the instance has left",
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        problems = label_problems(labels)
        if problems:
            raise ValueError("; ".join(problems))
        return labels

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, namespaces: list[str]) -> list[str]:
        for namespace in namespaces:
            if not is_valid_name(namespace):
                raise ValueError(f"{namespace[:64]!r} is not a namespace: {NAME_RULE}")
        if len(set(namespaces)) != len(namespaces):
            raise ValueError("a namespace is named twice")
        return namespaces


@dataclass(frozen=True, slots=True)
class Report:
    """A valid report: the instance, and its content as it is kept and compared."""

    instance: str
    namespaces: frozenset[str]
    content: dict[str, Any]
    content_bytes: bytes
    """`content` as compact, key-sorted JSON: equal reports give equal bytes."""


def parse_report(body: Any) -> Report:
    """`body` (parsed JSON) as a `Report`; 422 with the path of each problem."""
    report = parse_body(ReportIn, body)
    namespaces = frozenset(report.namespaces)
    problems = []
    sections = (
        ("documents", report.documents),
        ("rejected", report.rejected),
        ("calls", report.calls),
    )
    for section, entries in sections:
        for key in entries:
            try:
                namespace, _ = split_key(key)
            except ValueError:
                problems.append({"loc": [section, key[:128]], "msg": "not 'namespace/name'"})
                continue
            if namespace not in namespaces:
                msg = f"namespace {namespace!r} is not in `namespaces`"
                problems.append({"loc": [section, key], "msg": msg})
    if problems:
        raise ValidationFailed("the report is not valid", problems)
    left_out = {"instance"} if report.calls else {"instance", "calls"}
    content = report.model_dump(mode="json", exclude=left_out)  # calls only when some
    content["namespaces"] = sorted(namespaces)
    return Report(report.instance, namespaces, content, dumps(content))


def check_scope(caller: Principal, report: Report) -> None:
    """403 unless `caller` may read every namespace the report names."""
    refused = sorted(ns for ns in report.namespaces if not caller.may_access(ns))
    if refused:
        raise Forbidden(
            f"token {caller.name!r} may not read namespace {refused[0]!r}, so it may not report "
            "for it",
            [{"loc": ["namespaces"], "msg": f"not readable: {', '.join(refused[:10])}"}],
        )
