"""`/v1/admin/reclaim` and `/v1/audit`: giving etcd space back, and who changed what."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from configsvc_schemas.wire import API_PREFIX, Role
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from configsvc.api.deps import Caller, ServicesDep, origin_of
from configsvc.api.http import (
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    read_json_body,
)
from configsvc.api.models import AuditOut, ReclaimOut, RotateOut, errors
from configsvc.crypto.keyring import KeyringError
from configsvc.crypto.reseal import reseal
from configsvc.crypto.store_keys import check_store_keys, forget_unused_keys
from configsvc.errors import BadRequest, Conflict, StoreFull
from configsvc.store.audit import MAX_AUDIT_READ, AuditRecord, audit_op, read_audit
from configsvc.store.reclaim import reclaim
from configsvc.store.records import utc_format

log = logging.getLogger("configsvc.admin")

router = APIRouter(
    prefix=API_PREFIX,
    tags=["admin"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)

DEFAULT_AUDIT_LIMIT = 1000


class ReclaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_versions: int = Field(ge=1, le=1_000_000, description="versions kept per document")


@router.post(
    "/admin/reclaim",
    summary="Trim history to the last N versions per document, compact, defragment and "
    "clear etcd's NOSPACE alarm (works while the store is full)",
    response_model=ReclaimOut,
    responses=errors(422),
    openapi_extra=json_body_openapi(ReclaimIn),
)
async def reclaim_space(request: Request, services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.ADMIN)
    body = parse_body(ReclaimIn, await read_json_body(request))
    store = services.store
    result = await reclaim(store.kv, store.layout, body.keep_versions)
    services.metrics.history_trimmed.labels("reclaim").inc(result.versions_removed)
    if result.alarm_cleared or not await store.kv.nospace_alarmed():
        services.space.writable()
    record = AuditRecord(
        action="reclaim",
        target="*",
        by=caller.name,
        origin=origin_of(request),
        details={
            "keep_versions": body.keep_versions,
            "versions_removed": result.versions_removed,
            "freed_bytes": result.freed_bytes,
            "first_version_kept": result.documents,
        },
    )
    try:
        await store.kv.txn([], [audit_op(store.layout, record)])
    except StoreFull:
        log.warning("reclaim done but not logged in the audit: the store is still full")
    return json_response(
        {
            "freed_bytes": result.freed_bytes,
            "db_bytes": result.db_bytes,
            "versions_removed": result.versions_removed,
            "documents": result.documents,
        }
    )


@router.post(
    "/admin/secrets/rotate",
    summary="Read the secret key file again and re-seal every stored secret with its active "
    "key (also seals secrets stored in clear before a key file was given)",
    response_model=RotateOut,
    responses=errors(409),
)
async def rotate_secret_key(request: Request, services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.ADMIN)
    store = services.store
    codec = store.codec
    if codec.sealer is None:
        raise Conflict(
            "secrets are not sealed at rest on this service: start it with a key file "
            "(CONFIGSVC_SECRET_KEY_FILE; the embedded default has one)"
        )
    try:
        codec.reload()
    except KeyringError as exc:
        raise Conflict(str(exc)) from None
    assert codec.sealer is not None
    await check_store_keys(store.kv, store.layout, codec.sealer)
    result = await reseal(store.kv, store.layout, codec)
    in_use = result.keys_in_use | {codec.sealer.active}
    await forget_unused_keys(store.kv, store.layout, in_use)
    record = AuditRecord(
        action="secrets.rotate",
        target="*",
        by=caller.name,
        origin=origin_of(request),
        details={"active": codec.sealer.active, "rewritten": result.rewritten},
    )
    await store.kv.txn([], [audit_op(store.layout, record)])
    return json_response(
        {
            "active": codec.sealer.active,
            "examined": result.examined,
            "rewritten": result.rewritten,
            "keys_in_use": sorted(in_use),
        }
    )


@router.get(
    "/audit",
    summary="Every change (documents, tokens, kinds, rollouts, reclaims): who, when, what, "
    "from where; oldest first",
    response_model=AuditOut,
)
async def audit(
    services: ServicesDep,
    caller: Caller,
    since: Annotated[
        str | None, Query(description="RFC 3339 UTC time, e.g. 2026-12-01T00:00:00Z")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_READ)] = DEFAULT_AUDIT_LIMIT,
) -> Response:
    caller.require(Role.ADMIN)
    start = _utc_key(since) if since else ""
    store = services.store
    records = await read_audit(store.kv, store.layout, start, limit)
    items: list[dict[str, Any]] = [record.to_json() for record in records]
    return json_response({"items": items})


def _utc_key(since: str) -> str:
    """`since` as the audit keys spell times (`...T01:02:03.456Z`); 400 if not a time."""
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            "since must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
            [{"loc": ["query", "since"], "msg": "not an RFC 3339 time"}],
        ) from None
    if moment.tzinfo is None:
        raise BadRequest(
            "since must name its time zone (e.g. a trailing Z for UTC)",
            [{"loc": ["query", "since"], "msg": "no time zone"}],
        )
    return utc_format(moment)
