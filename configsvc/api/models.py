"""The shapes of the API's answers, for the OpenAPI description.

The routes build their JSON themselves (one pass, secrets masked per caller); these models
say what that JSON is, so that `/openapi.json` is enough to generate a client in another
language. A test checks that real answers and the examples here validate against it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Spec = dict[str, Any]

DOCUMENT_EXAMPLE: dict[str, Any] = {
    "namespace": "prod",
    "name": "chat-models",
    "kind": "ModelEndpoints",
    "spec": {
        "default": "local-34b",
        "endpoints": {
            "local-34b": {
                "base_url": "http://127.0.0.1:1234/v1",
                "model": "codebooga-34b",
                "api_key": "****",
                "timeout": {"read": 600},
            }
        },
    },
    "message": "raise read timeout for the local 34B model",
    "version": 7,
    "revision": 1234,
    "updated_at": "2026-11-22T01:02:03.456Z",
    "updated_by": "deploy-bot",
    "action": "put",
}


class Answer(BaseModel):
    """Answers may gain fields in later versions: clients ignore the ones they do not know."""

    model_config = ConfigDict(extra="allow")


class ErrorDetailOut(Answer):
    loc: list[str | int] | None = Field(default=None, description="the field path")
    msg: str | None = None
    type: str | None = None
    document: str | None = Field(default=None, description="`ns/name` of a stored document")


class ErrorInfoOut(Answer):
    code: str = Field(description="stable: validation_failed, not_found, conflict, …")
    message: str
    details: list[ErrorDetailOut]


class ErrorOut(Answer):
    """Every error answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_failed",
                        "message": "spec is not a valid ModelEndpoints",
                        "details": [
                            {
                                "loc": ["spec", "endpoints", "a", "timeout", "read"],
                                "msg": "Input should be greater than 0",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorInfoOut


class DocumentOut(Answer):
    """A config document, secrets shown as `****` unless the token may read them."""

    model_config = ConfigDict(json_schema_extra={"examples": [DOCUMENT_EXAMPLE]})

    namespace: str
    name: str
    kind: str
    spec: Spec
    message: str | None
    version: int = Field(ge=1, description="per document, never reused")
    revision: int = Field(description="the store's revision of this change")
    updated_at: str = Field(description="RFC 3339 UTC")
    updated_by: str = Field(description="the token's name")
    action: Literal["put", "rollback", "rollout"] = Field(
        description="what wrote this version (rollout: a staged rollout's promotion)"
    )
    rolled_back_to: int | None = Field(
        default=None, description="for a rollback: the version whose spec it restored"
    )
    rollout: str | None = Field(
        default=None,
        description="in a listing for an SDK instance chosen by a rollout: the rollout's id "
        "(this is its candidate)",
    )


class PutOut(DocumentOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**DOCUMENT_EXAMPLE, "changed": True}]}
    )

    revision: int | None = Field(description="the store's revision; null on a dry run")  # type: ignore[assignment]
    changed: bool = Field(description="false when the document was equal and nothing was written")
    dry_run: bool | None = Field(default=None, description="true: validated, nothing stored")


class VersionOut(DocumentOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**DOCUMENT_EXAMPLE, "action": "put"}]}
    )

    action: Literal["put", "rollback", "rollout"]


class RollbackOut(DocumentOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**DOCUMENT_EXAMPLE, "rolled_back_to": 5}]}
    )

    rolled_back_to: int


class ListingOut(Answer):
    namespace: str
    revision: int = Field(description="the store's revision the listing was read at")
    items: list[DocumentOut]


class NamespacesOut(Answer):
    items: list[str]


class HistoryItemOut(Answer):
    version: int
    revision: int
    updated_at: str
    updated_by: str
    message: str | None
    action: Literal["put", "delete", "rollback", "rollout"] = Field(
        description="`rollout`: a transition of a staged rollout of this (candidate) version"
    )
    kind: str | None
    rolled_back_to: int | None = Field(
        default=None, description="for a rollback: the version whose spec it restored"
    )


class HistoryOut(Answer):
    namespace: str
    name: str
    items: list[HistoryItemOut] = Field(description="newest first")


class DeletedOut(HistoryItemOut):
    namespace: str
    name: str
    deleted: Literal[True]


KIND_EXAMPLE: dict[str, Any] = {
    "kind": "AgentRoles",
    "builtin": False,
    "version": 3,
    "description": "Agent roles: skills and concurrency",
    "schema": {
        "type": "object",
        "properties": {"roles": {"type": "object"}},
        "required": ["roles"],
        "additionalProperties": False,
    },
    "revision": 1234,
    "updated_at": "2026-11-22T01:02:03.456Z",
    "updated_by": "platform-team",
    "message": "add max_concurrency",
}


class SchemaOut(Answer):
    """A kind: built in (a pydantic model of the service) or registered by a team."""

    model_config = ConfigDict(json_schema_extra={"examples": [KIND_EXAMPLE]})

    kind: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the spec")
    builtin: bool = Field(description="shipped with the service: cannot be replaced or deleted")
    version: int = Field(ge=1, description="per kind, never reused (built-in kinds: 1)")
    description: str | None = None
    revision: int | None = Field(default=None, description="the store's revision (user kinds)")
    updated_at: str | None = None
    updated_by: str | None = None
    message: str | None = None


class SchemasOut(Answer):
    items: list[SchemaOut]


class SchemaPutOut(SchemaOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{**KIND_EXAMPLE, "changed": True}]})

    revision: int | None = Field(description="the store's revision; null on a dry run")
    changed: bool = Field(description="false when the kind was equal and nothing was written")
    dry_run: bool | None = Field(default=None, description="true: checked, nothing stored")


class KindHistoryItemOut(Answer):
    version: int
    revision: int
    updated_at: str
    updated_by: str
    message: str | None
    action: Literal["put", "delete"]


class KindHistoryOut(Answer):
    kind: str
    items: list[KindHistoryItemOut] = Field(description="newest first")


class KindVersionOut(SchemaOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{**KIND_EXAMPLE, "action": "put"}]})

    action: Literal["put"]


class TokenOut(Answer):
    name: str
    role: Literal["reader", "writer", "admin"]
    namespaces: list[str]
    secrets: bool
    created_at: str
    created_by: str


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the token itself: shown this once, stored only hashed")


class TokensOut(Answer):
    items: list[TokenOut]


class RevokedOut(Answer):
    name: str
    revoked: Literal[True]


class WhoamiOut(Answer):
    name: str
    role: Literal["reader", "writer", "admin"]
    namespaces: list[str]
    secrets: bool


class ReclaimOut(Answer):
    freed_bytes: int = Field(description="how much smaller etcd's database file got")
    db_bytes: int
    versions_removed: int
    documents: dict[str, int] = Field(description="ns/name -> the first version kept")


class RotateOut(Answer):
    active: str = Field(description="the key every stored secret is now sealed with")
    examined: int = Field(description="stored specs read (every version of every document)")
    rewritten: int
    keys_in_use: list[str]


class RestoreOut(Answer):
    keys: int
    documents: int
    by_family: dict[str, int]
    backup_revision: int | None
    backup_created_at: str | None


class AuditItemOut(Answer):
    at: str
    by: str
    origin: str | None
    action: str = Field(description="put, delete, rollback, token.create, token.revoke, …")
    target: str
    namespace: str | None
    version: int | None
    message: str | None
    details: dict[str, Any]


class AuditOut(Answer):
    items: list[AuditItemOut]


class SessionOut(Answer):
    """A console session: whom it acts for, and the CSRF token its writes must carry."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "csrf_token": "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c",
                    "name": "oncall",
                    "role": "writer",
                    "namespaces": ["prod"],
                    "secrets": False,
                    "expires_at": "2026-11-22T09:02:03.456Z",
                }
            ]
        }
    )

    csrf_token: str = Field(description="send it as X-CSRF-Token with every write")
    name: str = Field(description="the token's name")
    role: Literal["reader", "writer", "admin"]
    namespaces: list[str]
    secrets: bool
    expires_at: str = Field(description="RFC 3339 UTC; the session is refused from then on")


class SignedOutOut(Answer):
    signed_out: Literal[True]


class HealthOut(Answer):
    status: str


class ReadyOut(Answer):
    status: str = Field(description="ready, or unavailable (with 503)")
    revision: int | None = None
    reason: str | None = None


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error answers of `statuses`."""
    return {status: {"model": ErrorOut, "description": _REASONS[status]} for status in statuses}


_REASONS = {
    400: "malformed request",
    401: "no or bad token",
    403: "role or namespace not allowed",
    404: "not found",
    409: "conflict",
    412: "If-Match does not name the current revision",
    413: "body or write too large",
    422: "invalid: each detail has a field path",
    503: "the store is unavailable",
}
