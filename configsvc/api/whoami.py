"""`/v1/whoami`: the calling token, so that a tool can tell what it may see and do."""

from __future__ import annotations

from configsvc_schemas.wire import WHOAMI_PATH
from fastapi import APIRouter, Depends, Response

from configsvc.api.deps import Caller
from configsvc.api.http import check_request, json_response
from configsvc.api.models import WhoamiOut, errors

router = APIRouter(tags=["tokens"], dependencies=[Depends(check_request)])


@router.get(
    WHOAMI_PATH,
    summary="The calling token: its name, role, namespace patterns and secret permission",
    response_model=WhoamiOut,
    responses=errors(400, 401),
)
async def whoami(caller: Caller) -> Response:
    return json_response(
        {
            "name": caller.name,
            "role": caller.role.value,
            "namespaces": list(caller.namespaces),
            "secrets": caller.secrets,
        }
    )
