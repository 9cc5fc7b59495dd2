"""`/v1/admin/backup` and `/v1/admin/restore`: the whole store as JSON lines, and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from configsvc_schemas.wire import API_PREFIX, Role
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from configsvc.api.deps import Caller, ServicesDep, origin_of
from configsvc.api.http import check_request, json_response
from configsvc.api.models import RestoreOut, errors
from configsvc.backup import (
    MAX_LINE_BYTES,
    Restorer,
    check_complete,
    dump,
    is_empty,
    parse_entry,
    put_back,
    read_header,
    read_meta,
    wipe,
)
from configsvc.errors import BadRequest, Conflict, PayloadTooLarge
from configsvc.store.audit import AuditRecord, audit_op

router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)

NDJSON = "application/x-ndjson"


@router.get(
    "/backup",
    summary="Every document, history record, user kind, token hash and audit record, at one "
    "etcd revision, as JSON lines (secrets stay sealed)",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}}},
)
async def backup(services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.ADMIN)
    store = services.store
    return StreamingResponse(
        dump(store.kv, store.layout, store.codec.sealer),
        media_type=NDJSON,
        headers={"Content-Disposition": 'attachment; filename="configsvc.backup"'},
    )


@router.post(
    "/restore",
    summary="Restore a backup into an empty store (or, with force, over this one)",
    response_model=RestoreOut,
    responses=errors(409, 413),
    openapi_extra={
        "requestBody": {"required": True, "content": {NDJSON: {"schema": {"type": "string"}}}}
    },
)
async def restore(
    request: Request,
    services: ServicesDep,
    caller: Caller,
    force: Annotated[bool, Query(description="replace what the store holds")] = False,
) -> Response:
    caller.require(Role.ADMIN)
    store = services.store
    lines = _lines(request)
    first = await anext(lines, None)
    if first is None:
        raise BadRequest("the body is empty: send a backup written by `configsvc backup`")
    header = read_header(first, store.codec.sealer)
    meta = await read_meta(store.kv, store.layout)
    if not await is_empty(store.kv, store.layout):
        if not force:
            raise Conflict(
                "the store is not empty (it holds documents, history, kinds or tokens): "
                "restore into an empty one, or pass force=true to replace everything"
            )
        await wipe(store.kv, store.layout)
    restorer = Restorer(store.kv, store.layout)
    try:
        async for line in lines:
            await restorer.add(*parse_entry(line))
        check_complete(header, restorer.result.keys)
        result = await restorer.finish()
    except Exception:
        await wipe(store.kv, store.layout)  # an empty store, not a half-restored one
        await put_back(store.kv, meta)
        raise
    record = AuditRecord(
        action="restore",
        target="*",
        by=caller.name,
        origin=origin_of(request),
        details={"backup_revision": header.get("revision"), "keys": result.keys},
    )
    await store.kv.txn([], [audit_op(store.layout, record)])
    return json_response(
        {
            "keys": result.keys,
            "documents": result.documents,
            "by_family": result.by_family,
            "backup_revision": header.get("revision"),
            "backup_created_at": header.get("created_at"),
        }
    )


async def _lines(request: Request) -> AsyncIterator[bytes]:
    """The body's non-empty lines, as they arrive (a line is at most `MAX_LINE_BYTES`)."""
    buffer = b""
    async for chunk in request.stream():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        if len(buffer) > MAX_LINE_BYTES:
            raise PayloadTooLarge(f"a line of the backup is over {MAX_LINE_BYTES} bytes")
        for line in complete:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
