"""HTTP details shared by the routers: bodies, ETags, JSON answers, name checks."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from configsvc.errors import BadRequest, PayloadTooLarge, ValidationFailed
from configsvc.settings import MAX_BODY_BYTES
from configsvc.store.keys import is_valid_name

NAME_RULE = "1-63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a-z or 0-9"


def check_name(value: str, what: str) -> str:
    """`value` if it is a valid namespace or document name, else 400 with the rule."""
    if not is_valid_name(value):
        raise BadRequest(
            f"invalid {what}: {NAME_RULE}", [{"loc": ["path", what], "msg": NAME_RULE}]
        )
    return value


async def read_json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request body parsed as JSON; 413 past `limit` bytes, 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    raw = b"".join(chunks)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise BadRequest(f"unsupported content type {content_type!r}: send application/json")
    if not raw:
        raise BadRequest("the body is empty: send a JSON object")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; stored, they would make the document unreadable."""
    raise BadRequest(f"malformed JSON: {name} is not a JSON number")


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [{"loc": ["body"], "msg": "expected an object"}]
        )
    return body


def etag(revision: int) -> str:
    return f'"{revision}"'


def etag_matches(if_none_match: str | None, revision: int, exists: bool = True) -> bool:
    """True when `If-None-Match` names the current ETag (or is `*` and the resource exists)."""
    if not if_none_match:
        return False
    current = etag(revision)
    for tag in (part.strip() for part in if_none_match.split(",")):
        if tag == "*":
            return exists
        if tag.removeprefix("W/") == current:
            return True
    return False


def parse_if_match(value: str | None) -> int | None:
    """The revision named by `If-Match: "<revision>"`; -1 for `*`; None when absent."""
    if value is None:
        return None
    tag = value.strip().removeprefix("W/")
    if tag == "*":
        return -1
    inner = tag.strip('"')
    if not inner.isdigit():
        raise BadRequest('If-Match must be "<revision>" as given in an ETag, or *')
    return int(inner)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)
