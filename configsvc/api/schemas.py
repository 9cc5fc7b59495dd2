"""`/v1/schemas`: the kinds, built in and registered by teams at run time.

Reads answer from the store (a kind written on another instance is listed at once);
writes are admin-only, checked against every stored document of the kind, and change
nothing when refused.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from configsvc_schemas.wire import KIND_NAME_RULE, SCHEMAS_PATH, is_valid_kind_name
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from configsvc.api.deps import Caller, Services, ServicesDep, origin_of
from configsvc.api.http import (
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    read_json_body,
)
from configsvc.api.models import (
    KindHistoryOut,
    KindVersionOut,
    SchemaOut,
    SchemaPutOut,
    SchemasOut,
    errors,
)
from configsvc.auth import Role
from configsvc.errors import BadRequest, Conflict, NotFound, ValidationFailed
from configsvc.kinds import Kind, UserKind
from configsvc.kinds.schema_rules import CompiledSchema, check_schema
from configsvc.store.kinds import KindRecord
from configsvc.store.records import Action, Document

router = APIRouter(
    prefix=SCHEMAS_PATH,
    tags=["schemas"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 503),
)

MAX_TEXT_LENGTH = 1000


class SchemaIn(BaseModel):
    """The body of `PUT /v1/schemas/{kind}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: dict[str, Any] = Field(
        alias="schema", description="JSON Schema 2020-12 of the spec; the root is an object"
    )
    description: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    message: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)


def kind_json(kind: Kind) -> dict[str, Any]:
    """The wire form of a kind (its JSON Schema as given, for user kinds)."""
    body: dict[str, Any] = {
        "kind": kind.name,
        "builtin": kind.builtin,
        "version": kind.version,
        "description": kind.description,
        "schema": kind.json_schema(),
    }
    if isinstance(kind, UserKind):
        body.update(kind.record.summary())
    return body


def _check_kind_name(kind: str) -> None:
    if not is_valid_kind_name(kind):
        detail = {"loc": ["path", "kind"], "msg": KIND_NAME_RULE}
        raise BadRequest(f"invalid kind name: {KIND_NAME_RULE}", [detail])


def _refuse_builtin(services: Services, kind: str, what: str) -> None:
    if services.registry.is_builtin(kind):
        raise Conflict(
            f"{kind} is a built-in kind: it cannot be {what}",
            [{"loc": ["path", "kind"], "msg": "built in"}],
        )


async def _stored_kind(services: Services, kind: str) -> Kind:
    """The kind as stored now (built in, or read from the store); 404 if there is none."""
    builtin = services.registry.builtin(kind)
    if builtin is not None:
        return builtin
    record = await services.kinds.get(kind)
    if record is None or record.deleted:
        raise NotFound(f"no kind {kind!r}")
    return services.registry.apply(record)


@router.get(
    "",
    summary="The kinds: built in and registered, with their JSON Schema",
    response_model=SchemasOut,
)
async def list_schemas(services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.READER)
    registry = services.registry
    kinds = registry.builtins()
    for record in await services.kinds.read_all():
        kind = registry.apply(record)
        if not kind.deleted:
            kinds.append(kind)
    items = [kind_json(kind) for kind in sorted(kinds, key=lambda k: k.name)]
    return json_response({"items": items})


@router.get(
    "/{kind}",
    summary="One kind with its JSON Schema",
    response_model=SchemaOut,
    responses=errors(404),
)
async def get_schema(kind: str, services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.READER)
    _check_kind_name(kind)
    return json_response(kind_json(await _stored_kind(services, kind)))


@router.put(
    "/{kind}",
    summary="Register or replace a kind (admin); refused if a stored document would not fit",
    response_model=SchemaPutOut,
    responses={
        201: {"model": SchemaPutOut, "description": "created"},
        **errors(403, 409, 413, 422),
    },
    openapi_extra=json_body_openapi(SchemaIn),
)
async def put_schema(
    kind: str,
    request: Request,
    services: ServicesDep,
    caller: Caller,
    dry_run: bool = False,
) -> Response:
    caller.require(Role.ADMIN)
    _check_kind_name(kind)
    _refuse_builtin(services, kind, "replaced")
    body = parse_body(SchemaIn, await read_json_body(request))
    compiled = check_schema(body.schema_)

    async def check(_current: KindRecord | None, documents: list[Document]) -> None:
        await _check_documents(kind, compiled, documents)

    with services.metrics.store_seconds.labels("put_kind").time():
        result = await services.kinds.put(
            kind,
            compiled.schema,
            description=body.description,
            message=body.message,
            author=caller.name,
            check=check,
            dry_run=dry_run,
            origin=origin_of(request),
        )
    answer = UserKind(result.record)
    if not dry_run:
        answer = services.registry.apply(result.record)
    payload = {**kind_json(answer), "changed": result.changed}
    if dry_run:
        payload = {**payload, "revision": None, "dry_run": True}
    return json_response(payload, status=201 if result.created else 200)


async def _check_documents(kind: str, compiled: CompiledSchema, documents: list[Document]) -> None:
    """422 naming every stored document of `kind` that `compiled` refuses (its first
    problem each: field path and words, never the value). Each document's validation is
    bounded; the event loop gets a turn between documents."""
    candidate = UserKind.candidate(kind, compiled)
    failures: list[dict[str, Any]] = []
    failing = 0
    for document in sorted(documents, key=lambda d: (d.namespace, d.name)):
        await asyncio.sleep(0)
        try:
            candidate.validate(document.spec)
        except ValidationFailed as exc:
            failing += 1
            address = f"{document.namespace}/{document.name}"
            failures += [{"document": address, **detail} for detail in exc.details]
    if failing:
        raise ValidationFailed(
            f"the new schema of {kind} would not fit {failing} stored document(s); "
            "change them first, or keep the schema compatible",
            failures,
        )


@router.delete(
    "/{kind}",
    summary="Delete a kind (admin); refused while any document has it",
    status_code=204,
    response_class=Response,
    responses=errors(403, 404, 409),
)
async def delete_schema(
    kind: str, request: Request, services: ServicesDep, caller: Caller
) -> Response:
    caller.require(Role.ADMIN)
    _check_kind_name(kind)
    _refuse_builtin(services, kind, "deleted")

    def check(_current: KindRecord | None, documents: list[Document]) -> None:
        if documents:
            in_use = sorted(f"{d.namespace}/{d.name}" for d in documents)
            raise Conflict(
                f"kind {kind} is used by {len(in_use)} document(s); delete them first",
                [{"document": doc, "loc": ["kind"], "msg": "has this kind"} for doc in in_use],
            )

    with services.metrics.store_seconds.labels("delete_kind").time():
        record = await services.kinds.delete(
            kind, author=caller.name, message=None, check=check, origin=origin_of(request)
        )
    services.registry.apply(record)
    return Response(status_code=204)


@router.get(
    "/{kind}/history",
    summary="Versions of a user kind, newest first",
    response_model=KindHistoryOut,
    responses=errors(404),
)
async def kind_history(
    kind: str,
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100_000)] | None = None,
) -> Response:
    caller.require(Role.READER)
    _check_kind_name(kind)
    records = await services.kinds.history(kind, limit or 0)
    if not records:
        raise NotFound(f"no history for kind {kind!r} (built-in kinds have none)")
    return json_response({"kind": kind, "items": [record.summary() for record in records]})


@router.get(
    "/{kind}/versions/{version}",
    summary="A user kind as it was",
    response_model=KindVersionOut,
    responses=errors(404),
)
async def kind_version(kind: str, version: int, services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.READER)
    _check_kind_name(kind)
    record = await services.kinds.version(kind, version) if version >= 1 else None
    if record is None:
        raise NotFound(f"no version {version} of kind {kind!r}")
    if record.action is Action.DELETE or record.schema is None:
        raise NotFound(f"version {version} of kind {kind!r} is a deletion")
    return json_response(
        {
            "kind": kind,
            "builtin": False,
            "description": record.description,
            "schema": record.schema,
            **record.summary(),
        }
    )
