"""`/v1/tokens`: create, list and revoke API tokens (admin only)."""

from __future__ import annotations

from configsvc_schemas.wire import TOKENS_PATH
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from configsvc.api.deps import Caller, ServicesDep, origin_of
from configsvc.api.http import (
    check_name,
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    read_json_body,
)
from configsvc.api.models import RevokedOut, TokenCreatedOut, TokensOut, errors
from configsvc.auth import ADMIN_NAME, Role, hash_secret, new_token, validate_patterns
from configsvc.errors import Conflict
from configsvc.store.records import TokenRecord, utc_now

router = APIRouter(
    prefix=TOKENS_PATH,
    tags=["tokens"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: Role
    namespaces: list[str] = Field(min_length=1)
    secrets: bool = False

    @field_validator("namespaces")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return list(validate_patterns(value))


@router.post(
    "",
    summary="Create a token; the answer holds the token, shown this once",
    status_code=201,
    response_model=TokenCreatedOut,
    responses=errors(409, 422),
    openapi_extra=json_body_openapi(TokenIn),
)
async def create_token(request: Request, services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.ADMIN)
    body = parse_body(TokenIn, await read_json_body(request))
    check_name(body.name, "name")
    if body.name == ADMIN_NAME:
        raise Conflict("the name 'admin' is the service's own admin token")
    caller.require_grant(body.namespaces, body.secrets)
    token = new_token(body.name)
    record = TokenRecord(
        name=body.name,
        role=body.role.value,
        namespaces=tuple(body.namespaces),
        secrets=body.secrets,
        sha256=hash_secret(token),
        created_at=utc_now(),
        created_by=caller.name,
    )
    await services.store.create_token(record, origin=origin_of(request))
    return json_response({**record.public(), "token": token}, status=201)


@router.get("", summary="List tokens (never their secrets)", response_model=TokensOut)
async def list_tokens(services: ServicesDep, caller: Caller) -> Response:
    caller.require(Role.ADMIN)
    records = await services.store.list_tokens()
    return json_response({"items": [record.public() for record in records]})


@router.delete(
    "/{name}",
    summary="Revoke a token; it stops working at once everywhere",
    response_model=RevokedOut,
    responses=errors(404),
)
async def revoke_token(
    name: str, request: Request, services: ServicesDep, caller: Caller
) -> Response:
    caller.require(Role.ADMIN)
    check_name(name, "name")
    await services.store.delete_token(name, by=caller.name, origin=origin_of(request))
    return json_response({"name": name, "revoked": True})
