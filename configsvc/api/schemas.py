"""`/v1/schemas`: the kinds this service knows, with their JSON Schemas."""

from __future__ import annotations

from configsvc_schemas.wire import SCHEMAS_PATH
from fastapi import APIRouter, Depends, Response

from configsvc.api.deps import Caller, ServicesDep
from configsvc.api.http import check_request, json_response
from configsvc.api.models import SchemaOut, SchemasOut, errors

router = APIRouter(
    prefix=SCHEMAS_PATH,
    tags=["schemas"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401),
)


@router.get(
    "",
    summary="The kinds this service knows, with their JSON Schema",
    response_model=SchemasOut,
)
async def list_schemas(services: ServicesDep, caller: Caller) -> Response:
    registry = services.registry
    items = [
        {"kind": name, "schema": registry.get(name).json_schema()} for name in registry.names()
    ]
    return json_response({"items": items})


@router.get(
    "/{kind}",
    summary="One kind's JSON Schema",
    response_model=SchemaOut,
    responses=errors(404),
)
async def get_schema(kind: str, services: ServicesDep, caller: Caller) -> Response:
    return json_response({"kind": kind, "schema": services.registry.get(kind).json_schema()})
