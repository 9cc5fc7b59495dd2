"""The fleet: `POST /v1/fleet/reports` (served lean), goodbyes, and the fleet's views.

Reports come from every SDK instance every `report_interval` (10,000 instances every 30 s
are 333 a second), so `POST /v1/fleet/reports` is served by a lean ASGI handler taken before
the middleware stack, like the watch: headers and query checked, the token looked up in a
short-lived cache, the body read under its own limit; a body this instance already found
equal to its instance's record (same bytes, same token) costs a digest and a dict lookup.
The route is still declared to FastAPI, for the OpenAPI description.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl

from configsvc_schemas.wire import (
    CONFIGS_PATH,
    FLEET_PATH,
    FLEET_REPORTS_PATH,
    FLEET_SUFFIX,
    INSTANCE_ID_RULE,
    MAX_REPORT_BYTES,
    is_valid_instance_id,
)
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from configsvc.api.deps import Caller, Services
from configsvc.api.fleet_models import DocumentFleetOut, FleetOut
from configsvc.api.http import (
    check_headers,
    check_json_media,
    check_name,
    check_query,
    check_request,
    json_body_openapi,
    json_response,
    parse_json,
    read_body,
)
from configsvc.api.models import errors
from configsvc.asgi_types import Receive, Scope, Send
from configsvc.auth import Role
from configsvc.errors import ApiError, BadRequest, StoreUnavailable
from configsvc.fleet.report import ReportIn
from configsvc.fleet.service import FleetService, body_digest

log = logging.getLogger("configsvc")

NO_CONTENT_START = {"type": "http.response.start", "status": 204, "headers": []}
NO_CONTENT_BODY = {"type": "http.response.body", "body": b""}

router = APIRouter(
    tags=["fleet"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)


def fleet_of(request: Request) -> FleetService:
    fleet: FleetService | None = getattr(request.app, "fleet", None)
    if fleet is None:
        raise StoreUnavailable("the fleet is not available: the service is starting or stopping")
    return fleet


async def get_fleet(request: Request) -> FleetService:
    return fleet_of(request)


FleetDep = Annotated[FleetService, Depends(get_fleet)]


@router.get(
    FLEET_PATH,
    summary="The SDK instances reporting for a namespace: what each applied and rejected",
    response_model=FleetOut,
)
async def list_fleet(
    namespace: Annotated[str, Query(description="the namespace")],
    caller: Caller,
    fleet: FleetDep,
) -> Response:
    check_name(namespace, "namespace")
    caller.require(Role.READER, namespace)
    return json_response(await fleet.answers.namespace(caller, namespace))


@router.get(
    f"{CONFIGS_PATH}/{{ns}}/{{name}}/{FLEET_SUFFIX}",
    summary="How the fleet stands on a document: instances per version, rejections, lag",
    response_model=DocumentFleetOut,
    responses=errors(404),
)
async def document_fleet(ns: str, name: str, caller: Caller, fleet: FleetDep) -> Response:
    check_name(ns, "namespace")
    check_name(name, "name")
    caller.require(Role.READER, ns)
    return json_response(await fleet.answers.document(caller, ns, name))


@router.delete(
    f"{FLEET_REPORTS_PATH}/{{instance}}",
    summary="Goodbye: an SDK instance leaves the fleet at once",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "removed"}, **errors(404)},
)
async def goodbye(instance: str, caller: Caller, fleet: FleetDep) -> Response:
    if not is_valid_instance_id(instance):
        raise BadRequest(
            f"invalid instance id: {INSTANCE_ID_RULE}",
            [{"loc": ["path", "instance"], "msg": INSTANCE_ID_RULE}],
        )
    await fleet.goodbye(caller, instance)
    return Response(status_code=204)


@router.post(
    FLEET_REPORTS_PATH,
    summary="An SDK instance reports what it applied and rejected (any role)",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "kept"}, **errors(409, 413, 422)},
    openapi_extra=json_body_openapi(ReportIn),
)
async def report(request: Request) -> Response:
    """Documents the route; requests are served by `handle_report` before FastAPI."""
    return ReportResponse()


class ReportResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        await handle_report(scope, receive, send, app.state.services, getattr(app, "fleet", None))


async def handle_report(
    scope: Scope, receive: Receive, send: Send, services: Services, fleet: FleetService | None
) -> None:
    """Serve `POST /v1/fleet/reports`: 204 once the report is taken, else the error."""
    request = Request(scope, receive)
    try:
        if fleet is None:
            raise StoreUnavailable("the fleet is not available: the service is starting")
        check_headers(scope["headers"])
        query = scope.get("query_string", b"")
        if query:
            check_query(parse_qsl(query.decode("latin-1")), ())
        client = scope.get("client")
        caller = await fleet.authenticate(
            request.headers.get("authorization"), client[0] if client else None
        )
        raw = await read_body(request, MAX_REPORT_BYTES)
        check_json_media(request.headers)
        digest = body_digest(raw)
        if not fleet.accept_known(caller, digest):
            await fleet.receive(caller, parse_json(raw), digest)
    except ApiError as error:
        if fleet is not None:
            fleet.count("refused")
        if error.status >= 500:
            log.warning("answering %d: %s", error.status, error.message)
        headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
        response = JSONResponse(error.body(), status_code=error.status, headers=headers)
        services.metrics.requests.labels("POST", FLEET_REPORTS_PATH, str(error.status)).inc()
        await response(scope, receive, send)
        return
    fleet.count_answered()
    await send(NO_CONTENT_START)
    await send(NO_CONTENT_BODY)
