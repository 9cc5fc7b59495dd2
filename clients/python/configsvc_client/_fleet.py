"""Fleet reports: which versions this client applied, which it rejected, told to the service.

`Identity` says who the client is: its instance id (by default `<host>-<pid>-<random hex>`,
made afresh in a forked child), app and labels. It also goes, as headers, on the watch
request and the polls.

`FleetReporter` is a task on the client's event loop. It reports `coalesce` seconds after
an applied or rejected change (gathering a burst into one report) and every `interval`
seconds; one report at a time, each bounded by `timeout`; a failed one is retried with
full-jitter backoff, and only logged at debug level and shown in `status.report_error`.
Nothing here ever holds up or fails the delivery of configuration. Reports hold no
secret: rejection reasons name field paths, and any secret value of the rejected document
that a reason might hold is masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import logging
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from configsvc_schemas import BUILTIN_KINDS
from configsvc_schemas.backoff import Backoff
from configsvc_schemas.secrets import SecretPath, locations, secret_paths
from configsvc_schemas.wire import (
    APP_PATTERN,
    APP_RULE,
    FLEET_REPORTS_PATH,
    INSTANCE_HEADER,
    INSTANCE_ID_RULE,
    INSTANCE_SUFFIX_BYTES,
    LABELS_HEADER,
    MASK,
    MAX_INSTANCE_ID_LENGTH,
    MAX_REPORT_DOCUMENTS,
    MAX_REPORT_ERROR_LENGTH,
    MAX_REPORT_TEXT_LENGTH,
    REPORT_MODES,
    fleet_report_path,
    is_valid_instance_id,
    label_problems,
    labels_header,
    make_instance_id,
)
from pydantic import BaseModel

from configsvc_client._options import ReportOptions
from configsvc_client._sources._wire import (
    Endpoints,
    auth_headers,
    error_from_exception,
    error_from_status,
)
from configsvc_client._state import ConfigState, Rejection
from configsvc_client._status import ClientStatus
from configsvc_client._types import CallUsage

log = logging.getLogger("configsvc_client")

SDK_DISTRIBUTIONS = ("configsvc-client", "configsvc")
"""Where the SDK's version comes from: its own distribution, or the one that carries it."""
FIRST_PERIOD_SPREAD = 0.5
"""The first periodic report comes after a random 50-100 % of the interval, so that
clients started together do not report together for ever after."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Besides 5xx and network errors: worth retrying soon. Other refusals wait `interval`
(and are only logged at debug level, like every failure: `status.report_error` says it)."""


# ---- who this client is -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """The instance id, app and labels a client reports and names itself with."""

    instance: str
    app: str | None
    labels: Mapping[str, str]

    def headers(self) -> dict[str, str]:
        """`X-Configsvc-Instance` and `X-Configsvc-Labels`, for the watch request and polls."""
        return {INSTANCE_HEADER: self.instance, LABELS_HEADER: labels_header(self.labels)}


class IdentityRule:
    """What the user asked for, checked at once; `current()` gives this process's identity.

    The default id is `<host>-<pid>-<random hex>`, made once per process: a forked child
    gets a new one. An explicit `instance_id` is used as given, and as `<id>-<pid>` in a
    forked child (two processes must never report under one id).
    """

    def __init__(
        self, app: str | None, labels: Mapping[str, str] | None, instance_id: str | None
    ) -> None:
        if app is not None and not APP_PATTERN.fullmatch(app):
            raise ValueError(f"invalid app {app!r}: {APP_RULE}")
        labels = dict(labels or {})
        problems = label_problems(labels)
        if problems:
            raise ValueError("invalid labels: " + "; ".join(problems))
        if instance_id is not None and not is_valid_instance_id(instance_id):
            raise ValueError(f"invalid instance_id {instance_id!r}: {INSTANCE_ID_RULE}")
        self._app = app
        self._labels = labels
        self._explicit = instance_id
        self._pid = os.getpid()
        self._identity = Identity(instance_id or _default_id(), app, labels)

    def current(self) -> Identity:
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            if self._explicit:
                tail = f"-{pid}"
                instance = self._explicit[: MAX_INSTANCE_ID_LENGTH - len(tail)] + tail
            else:
                instance = _default_id()
            self._identity = Identity(instance, self._app, self._labels)
        return self._identity


def _default_id() -> str:
    suffix = secrets.token_hex(INSTANCE_SUFFIX_BYTES)
    return make_instance_id(socket.gethostname(), os.getpid(), suffix)


@functools.cache
def sdk_name() -> str:
    """`configsvc_client/<version>`."""
    for distribution in SDK_DISTRIBUTIONS:
        try:
            return f"configsvc_client/{importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "configsvc_client"


# ---- what a report says -------------------------------------------------------------------


def utc_stamp(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds."""
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def clean_text(text: str, limit: int) -> str:
    """`text` without control characters (tabs and newlines stay), at most `limit` long."""
    text = CONTROL_CHARACTERS.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def _model_secrets(model: type[BaseModel]) -> tuple[SecretPath, ...]:
    try:
        return secret_paths(model.model_json_schema())
    except Exception:  # a model pydantic cannot describe: no marks to follow
        return ()


def masked_reason(rejection: Rejection) -> str:
    """The reason of a rejection, any secret value of the rejected document masked."""
    document = rejection.document
    models: list[type[BaseModel]] = list(rejection.models)
    builtin = BUILTIN_KINDS.get(document.kind)
    if builtin is not None:
        models.append(builtin)
    reason = rejection.reason
    for model in models:
        for path in _model_secrets(model):
            for _loc, container, key in locations(document.spec, path):
                value = container[key]
                if isinstance(value, str) and value and value != MASK:
                    reason = reason.replace(value, MASK)
    return clean_text(reason, MAX_REPORT_ERROR_LENGTH)


# ---- the reporter -------------------------------------------------------------------------


class FleetReporter:
    """Reports this client's applied and rejected versions; says goodbye on `aclose`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        urls: Sequence[str],
        token: str | None,
        identity: Identity,
        namespaces: Iterable[str],
        options: ReportOptions,
        state: ConfigState,
        status: Callable[[], ClientStatus],
        *,
        calls: Callable[[], Iterable[CallUsage]] = tuple,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._calls = calls
        self._endpoints = Endpoints(urls)
        self._headers = {"Content-Type": "application/json", **auth_headers(token)}
        self._identity = identity
        self._namespaces = sorted(namespaces)
        self._options = options
        self._state = state
        self._status = status
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._backoff = Backoff(options.retry, options.interval, 0, rng=self._rng, clock=clock)
        self._applied: dict[str, tuple[int, int, str]] = {}
        self._dirty = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reported = False
        self._truncation_noted = False
        self.error: str | None = None
        """Why the last report failed; None once one succeeded."""
        self.sent = 0
        """Reports the service took."""

    @property
    def instance(self) -> str:
        return self._identity.instance

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="configsvc-fleet-reports"
        )

    def changed(self) -> None:
        """Something was applied or rejected (call on the loop): report it soon."""
        self._stamp()
        self._dirty = True
        self._wake.set()

    async def aclose(self) -> None:
        """Stop reporting; say goodbye (within `goodbye_timeout`) if a report got through."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._reported:
            return
        url = self._endpoints.current + fleet_report_path(self.instance)
        try:
            await self._http.delete(
                url, headers=self._headers, timeout=self._options.goodbye_timeout
            )
        except httpx.HTTPError as exc:
            log.debug("fleet goodbye failed: %s", exc)

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        options = self._options
        due = self._clock() + self._rng.uniform(FIRST_PERIOD_SPREAD, 1.0) * options.interval
        while True:
            if not self._dirty:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, due - self._clock())):
                        await self._wake.wait()
            if self._dirty:
                await asyncio.sleep(options.coalesce)
            self._wake.clear()  # what happened so far goes in this report
            self._dirty = False
            try:
                retry_soon = await self._report()
            except Exception as exc:  # a bug here must not end the reports
                self._failed(f"internal_error: {type(exc).__name__}: {exc}")
                log.debug("fleet report failed", exc_info=True)
                retry_soon = False
            if retry_soon:
                due = self._clock() + self._backoff.next_delay()
            else:
                due = self._clock() + options.interval

    async def _report(self) -> bool:
        """Send one report; True when it failed in a way worth retrying soon."""
        body = self.body()
        if body is None:
            return False
        url = self._endpoints.current
        try:
            response = await self._http.post(
                url + FLEET_REPORTS_PATH,
                content=body,
                headers=self._headers,
                timeout=self._options.timeout,
            )
        except httpx.HTTPError as exc:
            self._failed(str(error_from_exception(exc, url)))
            self._endpoints.failed()
            return True
        if response.is_success:
            self.error = None
            self.sent += 1
            self._reported = True
            self._backoff.connected()
            return False
        self._failed(str(error_from_status(response.status_code, response.content)))
        status = response.status_code
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or status in RETRYABLE_STATUSES:
            self._endpoints.failed()
            return True
        return False  # a refusal (an older service, another token's id): next interval

    def _failed(self, error: str) -> None:
        self.error = error
        log.debug("fleet report failed: %s", error)

    # -- the report ---------------------------------------------------------------------

    def _stamp(self) -> None:
        """Note when each applied version was first seen applied (now, for new ones)."""
        now = utc_stamp(self._wall())
        applied: dict[str, tuple[int, int, str]] = {}
        for key, document in self._state.documents().items():
            held = self._applied.get(key)
            if held is not None and held[1] == document.revision:
                applied[key] = held
            else:
                applied[key] = (document.version, document.revision, now)
        self._applied = applied

    def body(self) -> bytes | None:
        """The report as sent (compact, key-sorted JSON: equal reports are equal bytes), or
        None when there is nothing to say (the client is stopped)."""
        mode = str(self._status().mode)
        if mode not in REPORT_MODES:
            return None
        self._stamp()
        documents = {
            key: {"version": version, "revision": revision, "applied_at": at}
            for key, (version, revision, at) in sorted(self._applied.items())[:MAX_REPORT_DOCUMENTS]
        }
        rejected = {
            key: {
                "version": rejection.document.version,
                "revision": rejection.document.revision,
                "error": masked_reason(rejection),
            }
            for key, rejection in sorted(self._state.rejections().items())[:MAX_REPORT_DOCUMENTS]
        }
        if len(self._applied) > MAX_REPORT_DOCUMENTS and not self._truncation_noted:
            self._truncation_noted = True
            log.warning("fleet reports list the first %d documents only", MAX_REPORT_DOCUMENTS)
        calls = candidate_calls(self._calls())
        report: dict[str, Any] = {
            "instance": self.instance,
            "app": self._identity.app,
            "labels": dict(self._identity.labels),
            "sdk": sdk_name(),
            "host": clean_text(socket.gethostname(), MAX_REPORT_TEXT_LENGTH),
            "pid": os.getpid(),
            "mode": mode,
            "documents": documents,
            "rejected": rejected,
            "namespaces": self._namespaces,
            "report_interval": self._options.interval,
        }
        if calls:
            report["calls"] = calls
        return json.dumps(report, separators=(",", ":"), sort_keys=True).encode()


def candidate_calls(usages: Iterable[CallUsage]) -> dict[str, dict[str, int]]:
    """The live helpers' tries on rollout candidates, by document (summed over routers).

    Only candidates: their counts are what a rollout's automatic abort reads, and leaving
    every other document out keeps a report equal to the previous one (no store write) when
    only traffic changed."""
    found: dict[str, dict[str, int]] = {}
    for usage in usages:
        if usage.rollout is None:
            continue
        entry = found.setdefault(usage.key, {"version": usage.version, "tries": 0, "failures": 0})
        if entry["version"] == usage.version:
            entry["tries"] += usage.tries
            entry["failures"] += usage.failures
    return dict(sorted(found.items())[:MAX_REPORT_DOCUMENTS])
