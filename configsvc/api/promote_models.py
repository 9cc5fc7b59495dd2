"""The shapes of a promotion's answer, for the OpenAPI description."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from configsvc.api.models import Answer, ErrorInfoOut, Spec


class PromotedSideOut(Answer):
    """One side of a promotion's diff: kind and spec, secrets always `****`."""

    kind: str
    spec: Spec


PROMOTE_EXAMPLE: dict[str, Any] = {
    "from": "staging",
    "to": "prod",
    "dry_run": False,
    "items": [
        {
            "name": "limits",
            "result": "updated",
            "source": {"version": 7, "revision": 1200},
            "target": {"version": 3, "revision": 1100},
            "before": {"kind": "RateLimits", "spec": {"limits": {"chat": {"burst": 5}}}},
            "after": {"kind": "RateLimits", "spec": {"limits": {"chat": {"burst": 9}}}},
            "changed_secrets": [],
            "message": "promoted from staging/limits version 7",
            "version": 4,
            "revision": 1300,
        }
    ],
}
"""(OpenAPI drops nulls from examples: a dry run's `"revision": null` would not validate.)"""


class PromotedVersionOut(Answer):
    version: int
    revision: int


class PromotedItemOut(Answer):
    """What a promotion did (or, on a dry run, would do) to one document."""

    name: str
    result: Literal[
        "created",
        "updated",
        "unchanged",
        "would_create",
        "would_update",
        "conflict",
        "refused",
        "missing",
        "failed",
        "skipped",
    ] = Field(
        description="conflict: the target or the source moved since the `if_match` / "
        "`source_versions` given (412/409); refused: invalid today (422, 413); missing: "
        "not in the source namespace; failed: the store did not answer (outcome unknown); "
        "skipped: not tried after a failure"
    )
    source: PromotedVersionOut | None = Field(description="the source document promoted")
    target: PromotedVersionOut | None = Field(
        description="the target as it was before (null: absent); its revision is the "
        "`if_match` of a compare-and-set promotion"
    )
    before: PromotedSideOut | None = Field(description="the target before, secrets masked")
    after: PromotedSideOut | None = Field(description="what is written, secrets masked")
    changed_secrets: list[list[str]] = Field(
        description="spec paths of secrets whose value differs (the values are never shown)"
    )
    message: str | None = Field(description="the history message of the new version")
    version: int | None = Field(description="the target's new version (would-be on a dry run)")
    revision: int | None = Field(description="the store revision written; null on a dry run")
    error: ErrorInfoOut | None = None


class PromoteOut(Answer):
    model_config = ConfigDict(
        populate_by_name=True, json_schema_extra={"examples": [PROMOTE_EXAMPLE]}
    )

    source_namespace: str = Field(alias="from")
    target_namespace: str = Field(alias="to")
    dry_run: bool
    items: list[PromotedItemOut]
