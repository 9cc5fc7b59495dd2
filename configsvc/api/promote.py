"""`POST /v1/promote`: copy documents from one namespace to another, on the service.

Secrets travel from the stored source to the stored target inside the service; answers
carry them only as `****` (with the paths of those that change), whoever asks. Each target
is written with the store's compare-and-set: against the revision the caller saw in its dry
run (`if_match`), and only if the source is still at the version the caller saw
(`source_versions`). Documents are promoted one by one, each with its own result; documents
only in the target namespace stay. Each new version's history message says where it came
from: `promoted from staging/chat-models version 7`.
"""

from __future__ import annotations

from typing import Any

from configsvc_schemas.secrets import locations, value_at
from configsvc_schemas.wire import API_PREFIX, NAME_PATTERN
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from configsvc.api.deps import Caller, Services, ServicesDep, origin_of
from configsvc.api.http import (
    MAX_REVISION,
    check_name,
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    read_json_body,
)
from configsvc.api.models import errors
from configsvc.api.promote_models import PromoteOut
from configsvc.auth import Principal, Role
from configsvc.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StoreUnavailable,
    ValidationFailed,
)
from configsvc.kinds.writes import DocumentWrite
from configsvc.registry import Kind
from configsvc.store.records import Document, NewContent

router = APIRouter(
    prefix=API_PREFIX,
    tags=["configs"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)

MAX_PROMOTED_NAMES = 1000
"""Documents one request may name (a namespace is promoted whole with `names` left out)."""
MAX_NOTE_LENGTH = 500
"""The caller's note, appended to the history message (which stays under 1,000 chars)."""
NAME_REGEX = f"^{NAME_PATTERN.pattern}$"


class PromoteIn(BaseModel):
    """The body of a promotion."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", pattern=NAME_REGEX, description="the source namespace")
    target: str = Field(alias="to", pattern=NAME_REGEX, description="the target namespace")
    names: list[str] | None = Field(
        default=None,
        max_length=MAX_PROMOTED_NAMES,
        description="the documents to promote; left out: every document of the source",
    )
    dry_run: bool = Field(default=False, description="compute the results, write nothing")
    if_match: dict[str, int] = Field(
        default_factory=dict,
        description="name -> the target revision the caller saw (0: the target must be "
        "absent); a target that moved since is not written (`conflict`)",
    )
    source_versions: dict[str, int] = Field(
        default_factory=dict,
        description="name -> the source version the caller saw; a source that moved since "
        "is not promoted (`conflict`)",
    )
    message: str | None = Field(
        default=None, max_length=MAX_NOTE_LENGTH, description="appended to each history message"
    )


def _check(body: PromoteIn) -> None:
    if body.source == body.target:
        raise BadRequest(
            "promote from one namespace to another: from and to are the same",
            [{"loc": ["body", "to"], "msg": "equals from"}],
        )
    for names in (body.names or [], body.if_match, body.source_versions):
        for name in names:
            check_name(name, "name")
    for field, numbers in (("if_match", body.if_match), ("source_versions", body.source_versions)):
        for name, number in numbers.items():
            if not 0 <= number <= MAX_REVISION:
                raise BadRequest(
                    f"{field}[{name}] must be a revision or version (0 or more)",
                    [{"loc": ["body", field, name], "msg": "out of range"}],
                )


@router.post(
    "/promote",
    summary="Copy documents from one namespace to another (secrets stay on the service)",
    response_model=PromoteOut,
    responses=errors(422),
    openapi_extra=json_body_openapi(PromoteIn),
)
async def promote(request: Request, services: ServicesDep, caller: Caller) -> Response:
    body = parse_body(PromoteIn, await read_json_body(request))
    _check(body)
    caller.require(Role.READER, body.source)
    caller.require(Role.WRITER, body.target)
    listing = await services.store.list_namespace(body.source)
    sources = {doc.name: doc for doc in listing.items}
    names = sorted(sources) if body.names is None else list(dict.fromkeys(body.names))
    items: list[dict[str, Any]] = []
    failed = False
    for name in names:
        source = sources.get(name)
        if failed:
            items.append(_item(name, "skipped", source))
        elif source is None:
            error = NotFound(f"no document {body.source}/{name}")
            items.append(_item(name, "missing", None, error=error))
        else:
            item = await _promote_one(services, caller, body, source, origin_of(request))
            failed = item["result"] == "failed"
            items.append(item)
    answer = {"from": body.source, "to": body.target, "dry_run": body.dry_run, "items": items}
    return json_response(answer)


async def _promote_one(
    services: Services,
    caller: Principal,
    body: PromoteIn,
    source: Document,
    origin: str | None,
) -> dict[str, Any]:
    name = source.name
    message = f"promoted from {body.source}/{name} version {source.version}"
    if body.message:
        message += f": {body.message}"
    expected_source = body.source_versions.get(name)
    if expected_source is not None and expected_source != source.version:
        error = PreconditionFailed(
            f"{body.source}/{name} is at version {source.version}, not {expected_source}"
        )
        return _item(name, "conflict", source, error=error)
    try:
        # today's schema, as a rollback does (a user kind as stored when the write commits)
        write = DocumentWrite(source.kind, source.spec, services.registry)
    except ValidationFailed as exc:
        return _item(name, "refused", source, error=exc)
    seen: list[Document | None] = [None]

    def build(current: Document | None) -> NewContent:
        seen[0] = current
        return write.content(current, message)

    expected_target = body.if_match.get(name)
    try:
        with services.metrics.store_seconds.labels("promote").time():
            result = await services.store.put(
                body.target,
                name,
                build,
                author=caller.name,
                if_match=expected_target or None,
                create_only=expected_target == 0,
                dry_run=body.dry_run,
                depends_on=write.guard,
                origin=origin,
            )
    except (PreconditionFailed, Conflict) as exc:
        return _item(name, "conflict", source, error=exc)
    except (ValidationFailed, PayloadTooLarge) as exc:
        return _item(name, "refused", source, error=exc)
    except StoreUnavailable as exc:
        return _item(name, "failed", source, error=exc)
    before = seen[0]
    if not result.changed:
        outcome = "unchanged"
    elif body.dry_run:
        outcome = "would_create" if result.created else "would_update"
    else:
        outcome = "created" if result.created else "updated"
    document = result.document
    return _item(
        name,
        outcome,
        source,
        before=before,
        after=(write.kind, result.document.spec),
        services=services,
        message=message if result.changed else None,
        version=document.version,
        revision=document.revision if result.changed and not body.dry_run else None,
    )


def _item(
    name: str,
    result: str,
    source: Document | None,
    *,
    error: ApiError | None = None,
    before: Document | None = None,
    after: tuple[Kind, dict[str, Any]] | None = None,
    services: Services | None = None,
    message: str | None = None,
    version: int | None = None,
    revision: int | None = None,
) -> dict[str, Any]:
    """One item of the answer; specs masked for everyone (the service copies secrets, the
    caller never needs them)."""
    before_side = after_side = None
    changed: list[list[str]] = []
    if after is not None:
        kind, spec = after
        after_side = {"kind": kind.name, "spec": kind.mask(spec)}
        if before is not None:
            changed = _changed_secrets(kind, before.spec, spec)
    if before is not None and services is not None:
        masking = services.registry.find(before.kind) or (after[0] if after else None)
        spec = masking.mask(before.spec) if masking is not None else before.spec
        before_side = {"kind": before.kind, "spec": spec}
    return {
        "name": name,
        "result": result,
        "source": _version(source),
        "target": _version(before),
        "before": before_side,
        "after": after_side,
        "changed_secrets": changed,
        "message": message,
        "version": version,
        "revision": revision,
        "error": error.body()["error"] if error is not None else None,
    }


def _version(document: Document | None) -> dict[str, int] | None:
    if document is None:
        return None
    return {"version": document.version, "revision": document.revision}


def _changed_secrets(kind: Kind, old: dict[str, Any], new: dict[str, Any]) -> list[list[str]]:
    """Where a secret of `new` replaces a different secret of `old` (both present)."""
    changed = []
    for path in kind.secrets:
        for loc, container, key in locations(new, path):
            previous = value_at(old, loc)
            if previous is not None and previous != container[key]:
                changed.append(["spec", *loc])
    return changed
