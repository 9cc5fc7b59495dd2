"""The shapes of the fleet view's answers, for the OpenAPI description."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from configsvc.api.models import Answer

FLEET_ITEM_EXAMPLE: dict[str, Any] = {
    "instance": "gw-7f9c-12345-a1b2c3d4",
    "app": "gateway",
    "labels": {"region": "eu"},
    "sdk": "configsvc_client/0.1.0",
    "host": "gw-7f9c",
    "pid": 12345,
    "mode": "streaming",
    "last_seen": "2026-11-22T01:02:33.456Z",
    "report_interval": 30.0,
    "namespaces": ["prod"],
    "documents": {
        "prod/chat-models": {
            "version": 7,
            "revision": 1234,
            "applied_at": "2026-11-22T01:02:03.501Z",
            "lag_ms": 45,
        }
    },
    "rejected": {
        "prod/limits": {
            "version": 4,
            "revision": 1240,
            "error": "spec.limits.chat: chat must allow at most 100 requests per second",
        }
    },
}


class AppliedOut(Answer):
    version: int
    revision: int
    applied_at: str = Field(description="when the instance applied it (its clock), RFC 3339")
    lag_ms: int | None = Field(
        default=None, description="from the version's updated_at to applied_at; null: unknown"
    )


class RejectedOut(Answer):
    version: int
    revision: int
    error: str = Field(description="why the instance's local model refused it")


class FleetItemOut(Answer):
    """One SDK instance: what it applied and rejected in the namespace asked about."""

    model_config = ConfigDict(json_schema_extra={"examples": [FLEET_ITEM_EXAMPLE]})

    instance: str
    app: str | None
    labels: dict[str, str]
    sdk: str | None
    host: str | None
    pid: int | None
    mode: str = Field(description="streaming, polling, cached or connecting")
    last_seen: str = Field(description="its last report, on any service instance")
    report_interval: float
    namespaces: list[str] = Field(description="the watched namespaces the caller may read")
    documents: dict[str, AppliedOut] = Field(description="by ns/name: the applied version")
    rejected: dict[str, RejectedOut] = Field(description="by ns/name: a version it refused")


class FleetOut(Answer):
    namespace: str
    items: list[FleetItemOut] = Field(description="by instance id")


class FleetRejectionOut(Answer):
    instance: str
    app: str | None = None
    version: int
    error: str


class LagOut(Answer):
    p50: int
    max: int


class DocumentFleetOut(Answer):
    """How the fleet stands on one document."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "namespace": "prod",
                    "name": "chat-models",
                    "version": 7,
                    "updated_at": "2026-11-22T01:02:03.456Z",
                    "instances": 40,
                    "on_version": {"7": 38, "6": 2},
                    "rejected": [
                        {
                            "instance": "gw-1-4242-0f0e0d0c",
                            "app": "gateway",
                            "version": 7,
                            "error": "spec.default: unknown endpoint",
                        }
                    ],
                    "lag_ms": {"p50": 41, "max": 180},
                }
            ]
        }
    )

    namespace: str
    name: str
    version: int = Field(description="the document's current version")
    updated_at: str
    instances: int = Field(description="instances reporting it, applied or rejected")
    on_version: dict[str, int] = Field(description="version -> instances that applied it")
    rejected: list[FleetRejectionOut]
    lag_ms: LagOut | None = Field(
        description="updated_at -> applied_at over the instances on `version`; null: none is"
    )
