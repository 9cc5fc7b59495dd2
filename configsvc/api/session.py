"""`/v1/session`: the console signs in with a token, gets a cookie, and signs out.

The cookie (`configsvc_session`) is `HttpOnly`, `SameSite=Strict`, limited to `/v1`, and
`Secure` when the request came over TLS; its value is a random session id (see
`configsvc.sessions`). The token is read from the body, never from a URL, and is neither
logged nor echoed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from configsvc_schemas.wire import API_PREFIX
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from configsvc.api.deps import ServicesDep
from configsvc.api.http import (
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    read_json_body,
)
from configsvc.api.models import SessionOut, SignedOutOut, errors
from configsvc.errors import Unauthorized
from configsvc.sessions import CSRF_HEADER, SESSION_COOKIE, SESSION_PATH, Session

router = APIRouter(
    prefix=SESSION_PATH,
    tags=["session"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 503),
)

MAX_TOKEN_LENGTH = 512
"""Longer than any token the service makes (`cst.<63-char name>.<43 characters>`)."""
MAX_SESSION_BODY_BYTES = 4096
NO_STORE = {"Cache-Control": "no-store"}


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH, description="an API token")


def _session_json(session: Session) -> dict[str, Any]:
    principal = session.principal
    expires = datetime.fromtimestamp(session.expires_at, UTC)
    return {
        "csrf_token": session.csrf_token,
        "name": principal.name,
        "role": principal.role.value,
        "namespaces": list(principal.namespaces),
        "secrets": principal.secrets,
        "expires_at": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


@router.post(
    "",
    summary="Sign in: exchange a token for a session cookie; answers the CSRF token",
    response_model=SessionOut,
    responses=errors(413, 422),
    openapi_extra=json_body_openapi(SessionIn),
)
async def sign_in(request: Request, services: ServicesDep) -> Response:
    body = parse_body(SessionIn, await read_json_body(request, limit=MAX_SESSION_BODY_BYTES))
    new = await services.sessions.sign_in(body.token)
    response = json_response(_session_json(new.session), headers=NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        new.session_id,
        max_age=int(services.sessions.options.ttl),
        path=API_PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.get(
    "",
    summary="The console's session (from its cookie), with its CSRF token",
    response_model=SessionOut,
)
async def current_session(request: Request, services: ServicesDep) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise Unauthorized("no console session: sign in with POST /v1/session")
    session = await services.sessions.verify(session_id)
    return json_response(_session_json(session), headers=NO_STORE)


@router.delete(
    "",
    summary="Sign out: end the console's session everywhere and clear its cookie",
    response_model=SignedOutOut,
    responses=errors(403),
)
async def sign_out(request: Request, services: ServicesDep) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    session = None
    if session_id:
        try:
            session = await services.sessions.verify(session_id)
        except Unauthorized:
            session = None  # already over (expired, signed out, token revoked): just forget it
    if session is not None:
        session.require_csrf(request.headers.get(CSRF_HEADER))
        await services.sessions.sign_out(session)
    response = json_response({"signed_out": True}, headers=NO_STORE)
    response.delete_cookie(
        SESSION_COOKIE,
        path=API_PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
