"""HTTP details shared by the routers: bodies, ETags, JSON answers, name checks."""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from configsvc_schemas.wire import NAME_RULE, is_valid_name
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from configsvc.errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    ValidationFailed,
    validation_failed,
)
from configsvc.settings import MAX_BODY_BYTES
from configsvc.store.write_state import ANY_REVISION

ModelT = typing.TypeVar("ModelT", bound=BaseModel)

MAX_JSON_DEPTH = 64
"""Nesting levels of arrays and objects a body may have (a document needs fewer than 10)."""

MAX_HEADER_BYTES = 32 * 1024
"""Total size of a request's header names and values."""

MAX_REVISION = 2**63 - 2
"""The largest revision a client may name (etcd revisions are int64; `since + 1` must fit)."""


class HeadersTooLarge(ApiError):
    status = 431
    code = "headers_too_large"


class RequestTimeout(ApiError):
    status = 408
    code = "request_timeout"


def check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """431 when the request's headers are over `MAX_HEADER_BYTES` in all."""
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(
            f"the request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}"
        )


def check_query(
    items: Sequence[tuple[str, str]], allowed: Iterable[str], repeatable: Iterable[str] = ()
) -> None:
    """400 for a query parameter the route does not know, or a single one given twice.

    A typo must not pass silently: `?dryrun=true` on a PUT would store for real.
    """
    known = set(allowed)
    seen: set[str] = set()
    for name, _value in items:
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise BadRequest(
                f"unknown query parameter {name[:64]!r} (this route takes: {names})",
                [{"loc": ["query", name[:64]], "msg": "unknown parameter"}],
            )
        if name in seen and name not in repeatable:
            raise BadRequest(
                f"query parameter {name!r} is given more than once",
                [{"loc": ["query", name], "msg": "given more than once"}],
            )
        seen.add(name)


async def check_request(request: Request) -> None:
    """Router dependency: bounded headers, and only the query parameters the route declares."""
    check_headers(request.scope.get("headers", ()))
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    fields = {field.alias: field for field in dependant.query_params}
    repeatable = {
        alias
        for alias, field in fields.items()
        if _is_sequence(getattr(getattr(field, "field_info", None), "annotation", None))
    }
    check_query(request.query_params.multi_items(), fields, repeatable)


def _is_sequence(annotation: Any) -> bool:
    origins = {typing.get_origin(annotation), *map(typing.get_origin, typing.get_args(annotation))}
    return bool(origins & {list, tuple, set, frozenset})


REVISION_DIGITS = len(str(MAX_REVISION))


def _is_digits(value: str) -> bool:
    """ASCII digits only (`"²".isdigit()` is true, but `int("²")` fails)."""
    return value.isascii() and value.isdigit()


def parse_revision(value: str, what: str) -> int:
    """A store revision given by a client (ASCII digits, int64); else 400."""
    if not _is_digits(value) or len(value) > REVISION_DIGITS or int(value) > MAX_REVISION:
        raise BadRequest(f"{what} must be a store revision (a whole number)")
    return int(value)


def check_name(value: str, what: str) -> str:
    """`value` if it is a valid namespace or document name, else 400 with the rule."""
    if not is_valid_name(value):
        raise BadRequest(
            f"invalid {what}: {NAME_RULE}", [{"loc": ["path", what], "msg": NAME_RULE}]
        )
    return value


async def read_json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request body parsed as JSON; 413 past `limit` bytes, 400 if not JSON."""
    raw = await read_body(request, limit)
    check_json_media(request.headers)
    return parse_json(raw)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body as it came; 413 past `limit` bytes (a larger `Content-Length` is
    refused before anything is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and _is_digits(declared) and int(declared[:20]) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def check_json_media(headers: Mapping[str, str]) -> None:
    """400 unless the body is sent as JSON (`application/json`, `application/*+json`, or no
    type) with no content encoding."""
    content_type = headers.get("content-type", "application/json")
    content_type = content_type.split(";")[0].strip().lower()  # media types ignore case
    if content_type != "application/json" and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise BadRequest(f"unsupported content type {content_type[:100]!r}: send application/json")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise BadRequest(f"unsupported content encoding {encoding[:100]!r}: send the JSON as is")


def parse_json(raw: bytes) -> Any:
    """`raw` parsed as strict JSON (UTF-8, finite numbers, bounded nesting, no lone
    surrogates); 400 otherwise."""
    if not raw:
        raise BadRequest("the body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise BadRequest("malformed JSON: a number is too long") from None
    _check_parsed(value)
    return value


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; stored, they would make the document unreadable."""
    raise BadRequest(f"malformed JSON: {name} is not a JSON number")


def _finite_float(literal: str) -> float:
    """A JSON number; one too large for a double (`1e400`) would be stored as Infinity."""
    value = float(literal)
    if not math.isfinite(value):
        raise BadRequest(f"malformed JSON: the number {literal[:40]} is out of range")
    return value


def _too_deep() -> BadRequest:
    return BadRequest(f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")


def _check_parsed(value: Any) -> None:
    """400 past `MAX_JSON_DEPTH` levels, or for a string holding a lone surrogate (`\\ud800`):
    such a string cannot be stored as UTF-8 nor answered."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Iterable[Any] = node.values()
            _check_strings(node.keys())
        elif isinstance(node, list):
            items = node
        else:
            _check_strings((node,))
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in items)


def _check_strings(values: Iterable[Any]) -> None:
    for text in values:
        if isinstance(text, str) and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    "malformed JSON: a string holds a lone surrogate escape (\\ud800-\\udfff)"
                ) from None


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
        return ANY_REVISION
    inner = tag.strip('"')
    if not _is_digits(inner):
        raise BadRequest('If-Match must be "<revision>" as given in an ETag, or *')
    # Past int64 no document can be at that revision (and int() refuses 4,300+ digits).
    return int(inner) if len(inner) <= REVISION_DIGITS else MAX_REVISION + 1


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` that documents a JSON request body of `model`'s shape.

    The routes read their bodies themselves (size limit, strict JSON), so FastAPI does not
    see them; without this the OpenAPI description would show no body at all.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**inline(defs[ref.removeprefix("#/$defs/")]), **inline(rest)}
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def parse_body(model: type[ModelT], body: Any) -> ModelT:
    """`body` as a `model`; 422 with the path of each problem."""
    try:
        return model.model_validate(require_object(body))
    except ValidationError as exc:
        raise validation_failed("the body is not a valid request", exc) from None
