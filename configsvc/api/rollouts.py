"""`/v1/configs/{ns}/{name}/rollouts`: start a staged rollout, read it, promote, pause,
resume or abort it.

A rollout's candidate is validated as any write of the document is (secrets sent as `****`
are restored from the current version; a user kind as stored when the start commits). While
it is running or paused, plain writes of the document answer 409 (see `EtcdConfigStore`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from configsvc_schemas.wire import API_PREFIX
from fastapi import APIRouter, Depends, Header, Request, Response

from configsvc.api.deps import Caller, Services, ServicesDep, origin_of
from configsvc.api.fleet import FleetDep
from configsvc.api.http import (
    check_json_media,
    check_name,
    check_request,
    json_body_openapi,
    json_response,
    parse_body,
    parse_if_match,
    parse_json,
    read_body,
    read_json_body,
)
from configsvc.api.models import errors
from configsvc.api.rollout_models import RolloutActionIn, RolloutIn, RolloutOut
from configsvc.auth import Principal, Role
from configsvc.errors import BadRequest, NotFound
from configsvc.fleet.masking import masked, secret_values
from configsvc.fleet.service import FleetService
from configsvc.kinds.writes import DocumentWrite
from configsvc.rollouts import transitions
from configsvc.rollouts.checks import PromotionCheck
from configsvc.rollouts.signals import Reported, candidate_fleet
from configsvc.store.records import Document
from configsvc.store.rollout_record import AbortOn, RolloutRecord
from configsvc.store.rollouts import RolloutPlan

router = APIRouter(
    prefix=API_PREFIX,
    tags=["rollouts"],
    dependencies=[Depends(check_request)],
    responses=errors(400, 401, 403, 503),
)

ROLLOUTS = "/configs/{ns}/{name}/rollouts"
CURRENT = f"{ROLLOUTS}/current"


def _check_address(ns: str, name: str) -> None:
    check_name(ns, "namespace")
    check_name(name, "name")


@router.post(
    ROLLOUTS,
    summary="Start a staged rollout of a candidate version",
    status_code=201,
    response_model=RolloutOut,
    responses={
        200: {"model": RolloutOut, "description": "dry run: the rollout that would start"},
        **errors(404, 409, 412, 413, 422),
    },
    openapi_extra=json_body_openapi(RolloutIn),
)
async def start_rollout(
    ns: str,
    name: str,
    request: Request,
    services: ServicesDep,
    caller: Caller,
    fleet: FleetDep,
    dry_run: bool = False,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    _check_address(ns, name)
    caller.require(Role.WRITER, ns)
    expected_revision = parse_if_match(if_match)
    body = parse_body(RolloutIn, await read_json_body(request))
    if body.namespace not in (None, ns) or body.name not in (None, name):
        raise BadRequest(f"the body names {body.namespace}/{body.name} but the path is {ns}/{name}")
    write = DocumentWrite(body.kind, body.spec, services.registry)
    plan = RolloutPlan(
        steps=tuple(body.steps),
        step_seconds=body.step_seconds,
        match_labels=body.match.labels,
        abort_on=AbortOn(body.abort_on.rejected, body.abort_on.error_rate, body.abort_on.min_calls),
    )
    with services.metrics.store_seconds.labels("rollout").time():
        record = await services.rollouts.start(
            ns,
            name,
            lambda current: write.content(current, body.message),
            plan,
            author=caller.name,
            origin=origin_of(request),
            depends_on=write.guard,
            if_match=expected_revision,
            dry_run=dry_run,
        )
    answer = await _answer(services, fleet, caller, record)
    if dry_run:
        transitions = [{**t, "revision": None} for t in answer["transitions"]]
        answer = {**answer, "revision": None, "transitions": transitions, "dry_run": True}
        return json_response(answer)
    return json_response(answer, status=201)


@router.get(
    CURRENT,
    summary="The document's latest rollout (any state) and how the fleet stands on it",
    response_model=RolloutOut,
    responses=errors(404),
)
async def get_rollout(
    ns: str, name: str, services: ServicesDep, caller: Caller, fleet: FleetDep
) -> Response:
    _check_address(ns, name)
    caller.require(Role.READER, ns)
    record = await services.rollouts.get(ns, name)
    if record is None:
        raise NotFound(f"{ns}/{name} never had a rollout")
    return json_response(await _answer(services, fleet, caller, record))


def _action_route(
    action: str, summary: str, decide: Callable[[RolloutRecord, datetime, str, str | None], Any]
) -> None:
    async def route(
        ns: str,
        name: str,
        request: Request,
        services: ServicesDep,
        caller: Caller,
        fleet: FleetDep,
    ) -> Response:
        _check_address(ns, name)
        caller.require(Role.WRITER, ns)
        body = await _action_body(request)
        record = await services.rollouts.get(ns, name)
        check = PromotionCheck(record, services.registry) if record is not None else None
        with services.metrics.store_seconds.labels("rollout").time():
            changed = await services.rollouts.transition(
                ns,
                name,
                lambda current, now: decide(current, now, caller.name, body.reason),
                author=caller.name,
                origin=origin_of(request),
                check=check if action == "promote" else None,
            )
        assert changed is not None  # only a scheduler's transition may find nothing to do
        return json_response(await _answer(services, fleet, caller, changed))

    route.__name__ = f"{action}_rollout"
    router.post(
        f"{CURRENT}/{action}",
        summary=summary,
        response_model=RolloutOut,
        responses=errors(404, 409, 422),
        openapi_extra=json_body_openapi(RolloutActionIn),
    )(route)


async def _action_body(request: Request) -> RolloutActionIn:
    """The optional body of an action: none, or `{"reason": …}`."""
    raw = await read_body(request)
    if not raw.strip():
        return RolloutActionIn()
    check_json_media(request.headers)
    return parse_body(RolloutActionIn, parse_json(raw))


def _abort(record: RolloutRecord, now: datetime, by: str, reason: str | None) -> RolloutRecord:
    return transitions.abort(record, now, by, reason or f"by {by}")


_action_route(
    "promote",
    "Promote the candidate: the current version for every instance, at once",
    lambda record, now, by, _reason: transitions.promote(record, now, by),
)
_action_route(
    "pause",
    "Pause: the chosen instances keep the candidate, no step comes",
    lambda record, now, by, reason: transitions.pause(record, now, by, reason),
)
_action_route(
    "resume",
    "Resume a paused rollout: its step goes on for what remained of it",
    lambda record, now, by, _reason: transitions.resume(record, now, by),
)
_action_route("abort", "Abort: every chosen instance goes back to the current version", _abort)


async def _answer(
    services: Services, fleet: FleetService, caller: Principal, record: RolloutRecord
) -> dict[str, Any]:
    """The rollout as the API answers it, with the fleet's counts on it."""
    members = [
        Reported(member.instance, member.record.content)
        for member in fleet.view.reporting(record.key)
    ]
    standing = candidate_fleet(record, members)
    on_version: dict[str, int] = {}
    for member in members:
        applied = member.content.get("documents", {}).get(record.key)
        if applied is not None:
            version = str(applied["version"])
            on_version[version] = on_version.get(version, 0) + 1
    hidden = () if caller.secrets else await _secret_values(services, record)
    next_step = record.next_step_at()
    return {
        "namespace": record.namespace,
        "name": record.name,
        "id": record.id,
        "state": record.state.value,
        "step": record.step + 1,
        "percent": record.percent,
        "steps": list(record.steps),
        "step_seconds": record.step_seconds,
        "version": record.version,
        "base_version": record.base.version,
        "kind": record.kind,
        "message": record.message,
        "match": {"labels": dict(record.match_labels)},
        "abort_on": record.abort_on.to_json(),
        "started_at": record.created_at,
        "started_by": record.created_by,
        "updated_at": record.last.at,
        "revision": record.revision,
        "next_step_at": _stamp(next_step),
        "reason": record.reason,
        "transitions": [t.to_json() for t in record.transitions],
        "fleet": {
            "instances": len(members),
            "chosen": standing.chosen,
            "on_candidate": standing.on_candidate,
            "on_version": dict(sorted(on_version.items(), key=lambda i: -int(i[0]))),
            "rejected": [
                {"instance": instance, "error": masked(error, hidden)}
                for instance, error in standing.rejected
            ],
            "tries": standing.tries,
            "failures": standing.failures,
            "error_rate": standing.error_rate,
        },
    }


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _secret_values(services: Services, record: RolloutRecord) -> tuple[str, ...]:
    """Every secret value of the candidate and the current version, longest first (a
    rejection's error text may hold one: it is masked for callers that may not read them)."""
    documents: list[Document] = []
    current = await services.store.get(record.namespace, record.name)
    if current is not None:
        documents.append(current)
    with contextlib.suppress(NotFound):  # trimmed past the history limit
        documents.append(await services.rollouts.candidate(record))
    return secret_values(services.registry, documents)
