"""`/v1/configs`: read, write, delete, history, versions and rollback of documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Annotated, Any

from configsvc_schemas.wire import API_PREFIX, INSTANCE_HEADER, LABELS_HEADER
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from configsvc.api.deps import Caller, Services, ServicesDep, origin_of
from configsvc.api.http import (
    check_name,
    check_request,
    etag,
    etag_matches,
    json_body_openapi,
    json_response,
    parse_body,
    parse_if_match,
    read_json_body,
)
from configsvc.api.models import (
    DeletedOut,
    DocumentOut,
    HistoryOut,
    ListingOut,
    NamespacesOut,
    PutOut,
    RollbackOut,
    VersionOut,
    errors,
)
from configsvc.auth import Principal, Role
from configsvc.errors import BadRequest, NotFound, ValidationFailed
from configsvc.kinds.writes import DocumentWrite
from configsvc.rollouts.choice import identity_from_headers
from configsvc.rollouts.variants import served_documents
from configsvc.store.records import Action, Document, HistoryRecord
from configsvc.store.rollout_reads import served_rollouts

router = APIRouter(
    prefix=API_PREFIX,
    tags=["configs"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)

MAX_MESSAGE_LENGTH = 1000
VARY = {"Vary": f"{INSTANCE_HEADER}, {LABELS_HEADER}"}
"""A listing differs by the SDK instance asking while rollouts run."""


class DocumentIn(BaseModel):
    """The body of a PUT. Fields the service sets are accepted and ignored, so that a
    document read with GET can be edited and written back as it is."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = None
    name: str | None = None
    kind: str
    spec: dict[str, Any]
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_LENGTH)
    version: int | None = None
    revision: int | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    action: str | None = None
    rolled_back_to: int | None = None


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int = Field(ge=1)
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_LENGTH)


async def know_kinds(
    services: Services, caller: Principal, documents: Iterable[Document], as_of: int
) -> None:
    """Before `document_json` masks documents read at store revision `as_of`: their kinds
    as stored then (the store watch may not have shown them to this process yet)."""
    if not caller.secrets:
        await services.registry.learn({document.kind for document in documents}, as_of)


def document_json(services: Services, caller: Principal, document: Document) -> dict[str, Any]:
    """The wire form of `document`, secrets masked unless the caller may read them."""
    if caller.secrets:
        return document.to_json()
    kind = services.registry.find(document.kind)
    return document.to_json(kind.mask(document.spec) if kind else None)


def _check_address(ns: str, name: str | None = None) -> None:
    check_name(ns, "namespace")
    if name is not None:
        check_name(name, "name")


@router.get(
    "/namespaces",
    summary="Namespaces that hold documents (those the token may see)",
    response_model=NamespacesOut,
)
async def list_namespaces(services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.READER)
    found = [ns for ns in await services.store.namespaces() if caller.may_access(ns)]
    return json_response({"items": found})


@router.get(
    "/configs/{ns}",
    summary="The documents of a namespace",
    response_model=ListingOut,
    responses={304: {"description": "If-None-Match names the current ETag"}},
)
async def list_configs(
    ns: str,
    services: ServicesDep,
    caller: Caller,
    if_none_match: Annotated[str | None, Header()] = None,
    x_configsvc_instance: Annotated[
        str | None, Header(description="the SDK instance asking: rollouts may choose it")
    ] = None,
    x_configsvc_labels: Annotated[
        str | None, Header(description="the SDK instance's labels, a JSON object")
    ] = None,
) -> Response:
    _check_address(ns)
    caller.require(Role.READER, ns)
    identity = identity_from_headers(x_configsvc_instance, x_configsvc_labels)
    if if_none_match:
        marker = await services.store.namespace_etag_revision(ns)
        if identity is not None:  # what it gets changes with each rollout transition too
            marker = max(marker, await services.rollouts.namespace_revision(ns))
        if etag_matches(if_none_match, marker):
            return Response(status_code=304, headers={"ETag": etag(marker), **VARY})
    listing = await services.store.list_namespace(ns)
    items, tag = listing.items, listing.etag_revision
    if identity is not None:
        served = await served_rollouts(services.rollouts, [ns], listing.revision)
        items = served_documents(items, served, identity)[0]
        tag = max([tag, *(s.record.revision for s in served)])
    await know_kinds(services, caller, items, listing.revision)
    body = {
        "namespace": ns,
        "revision": listing.revision,
        "items": [document_json(services, caller, doc) for doc in items],
    }
    return json_response(body, headers={"ETag": etag(tag), **VARY})


@router.get(
    "/configs/{ns}/{name}",
    summary="One document",
    response_model=DocumentOut,
    responses={
        304: {"description": "If-None-Match names the current ETag"},
        **errors(404),
    },
)
async def get_config(
    ns: str,
    name: str,
    services: ServicesDep,
    caller: Caller,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    _check_address(ns, name)
    caller.require(Role.READER, ns)
    document = await services.store.get(ns, name)
    if document is None:
        raise NotFound(f"no document {ns}/{name}")
    headers = {"ETag": etag(document.revision)}
    if etag_matches(if_none_match, document.revision):
        return Response(status_code=304, headers=headers)
    await know_kinds(services, caller, [document], document.revision)
    return json_response(document_json(services, caller, document), headers=headers)


@router.put(
    "/configs/{ns}/{name}",
    summary="Create or replace a document",
    response_model=PutOut,
    responses={201: {"model": PutOut, "description": "created"}, **errors(409, 412, 413, 422)},
    openapi_extra=json_body_openapi(DocumentIn),
)
async def put_config(
    ns: str,
    name: str,
    request: Request,
    services: ServicesDep,
    caller: Caller,
    dry_run: bool = False,
    if_match: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    _check_address(ns, name)
    caller.require(Role.WRITER, ns)
    expected_revision = parse_if_match(if_match)
    if if_none_match is not None and if_none_match.strip() != "*":
        raise BadRequest("on a PUT, If-None-Match must be * (create only)")
    body = parse_body(DocumentIn, await read_json_body(request))
    if body.namespace not in (None, ns) or body.name not in (None, name):
        raise BadRequest(f"the body names {body.namespace}/{body.name} but the path is {ns}/{name}")
    write = DocumentWrite(body.kind, body.spec, services.registry)
    with services.metrics.store_seconds.labels("put").time():
        result = await services.store.put(
            ns,
            name,
            lambda current: write.content(current, body.message),
            author=caller.name,
            origin=origin_of(request),
            if_match=expected_revision,
            create_only=if_none_match is not None,
            dry_run=dry_run,
            depends_on=write.guard,
        )
    payload = {**document_json(services, caller, result.document), "changed": result.changed}
    if dry_run:
        payload = {**payload, "revision": None, "dry_run": True}
    headers = {} if dry_run else {"ETag": etag(result.document.revision)}
    return json_response(payload, status=201 if result.created else 200, headers=headers)


@router.delete(
    "/configs/{ns}/{name}",
    summary="Delete a document (its history is kept)",
    response_model=DeletedOut,
    responses=errors(404, 412),
)
async def delete_config(
    ns: str,
    name: str,
    request: Request,
    services: ServicesDep,
    caller: Caller,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    _check_address(ns, name)
    caller.require(Role.WRITER, ns)
    with services.metrics.store_seconds.labels("delete").time():
        record = await services.store.delete(
            ns,
            name,
            author=caller.name,
            if_match=parse_if_match(if_match),
            origin=origin_of(request),
        )
    return json_response({"namespace": ns, "name": name, "deleted": True, **record.summary()})


@router.get(
    "/configs/{ns}/{name}/history",
    summary="Versions of a document, newest first",
    response_model=HistoryOut,
    responses=errors(404),
)
async def history(
    ns: str,
    name: str,
    services: ServicesDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100_000)] | None = None,
) -> Response:
    _check_address(ns, name)
    caller.require(Role.READER, ns)
    records = await services.store.history(ns, name, limit or 0)
    if not records:
        raise NotFound(f"no history for {ns}/{name}")
    rows = [row for record in records for row in record.rows()]
    return json_response({"namespace": ns, "name": name, "items": rows[: limit or None]})


@router.get(
    "/configs/{ns}/{name}/versions/{version}",
    summary="A document as it was",
    response_model=VersionOut,
    responses=errors(404),
)
async def get_version(
    ns: str, name: str, version: int, services: ServicesDep, caller: Caller
) -> Response:
    _check_address(ns, name)
    caller.require(Role.READER, ns)
    record = await _version_record(services, ns, name, version)
    document = record.document()
    if document is None:
        raise NotFound(f"version {version} of {ns}/{name} is a deletion")
    await know_kinds(services, caller, [document], record.revision)
    body = document_json(services, caller, document)
    return json_response({**body, "action": record.action.value})


async def _version_record(services: Services, ns: str, name: str, version: int) -> HistoryRecord:
    record = await services.store.version(ns, name, version) if version >= 1 else None
    if record is None:
        raise NotFound(f"no version {version} of {ns}/{name} (unknown or past the history limit)")
    return record


@router.post(
    "/configs/{ns}/{name}/rollback",
    summary="Write a new version equal to an old one",
    response_model=RollbackOut,
    responses={201: {"model": RollbackOut, "description": "re-created"}, **errors(404, 409, 422)},
    openapi_extra=json_body_openapi(RollbackIn),
)
async def rollback(
    ns: str, name: str, request: Request, services: ServicesDep, caller: Caller
) -> Response:
    _check_address(ns, name)
    caller.require(Role.WRITER, ns)
    body = parse_body(RollbackIn, await read_json_body(request))
    record = await _version_record(services, ns, name, body.to_version)
    old = record.document()
    if old is None:
        raise ValidationFailed(
            f"version {body.to_version} of {ns}/{name} is a deletion; roll back to a put",
            [{"loc": ["to_version"], "msg": "names a deletion"}],
        )
    # validated against the kind as it is today (as stored when the rollback commits)
    write = DocumentWrite(old.kind, old.spec, services.registry)
    message = body.message or f"rollback to version {body.to_version}"
    with services.metrics.store_seconds.labels("rollback").time():
        result = await services.store.put(
            ns,
            name,
            lambda current: replace(
                write.content(current, message), rolled_back_to=body.to_version
            ),
            author=caller.name,
            action=Action.ROLLBACK,
            origin=origin_of(request),
            depends_on=write.guard,
        )
    return json_response(
        {**document_json(services, caller, result.document), "rolled_back_to": body.to_version},
        status=201 if result.created else 200,
        headers={"ETag": etag(result.document.revision)},
    )
