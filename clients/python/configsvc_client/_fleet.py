"""Fleet reports: which versions this client applied, which it rejected, told to the service.

`FleetReporter` is a task on the client's event loop. It reports `coalesce` seconds after
an applied or rejected change (gathering a burst into one report) and every `interval`
seconds; while the client's watch stream is open on a service that counts it as the periodic
report (`vouched`), an unchanged periodic report is left out (but for every
`VOUCHED_REPORTS_EVERY`-th). One report at a time, each bounded by `timeout`; a failed one is
retried with full-jitter backoff, and only logged at debug level and shown in
`status.report_error`. Nothing here ever holds up or fails the delivery of configuration.
Reports hold no secret: rejection reasons name field paths, and any secret value of the
rejected document that a reason might hold is masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from configsvc_schemas import BUILTIN_KINDS
from configsvc_schemas.backoff import Backoff
from configsvc_schemas.secrets import SecretPath, locations, secret_paths
from configsvc_schemas.wire import (
    FLEET_REPORTS_PATH,
    MASK,
    MAX_REPORT_DOCUMENTS,
    MAX_REPORT_ERROR_LENGTH,
    MAX_REPORT_TEXT_LENGTH,
    REPORT_MODES,
    VOUCHED_REPORTS_EVERY,
    fleet_report_path,
)
from pydantic import BaseModel

from configsvc_client._identity import Identity, sdk_name
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

FIRST_PERIOD_SPREAD = 0.5
"""The first periodic report comes after a random 50-100 % of the interval, so that
clients started together do not report together for ever after."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
RETRYABLE_STATUSES = frozenset({408, 425, 429})
"""Besides 5xx and network errors: worth retrying soon. Other refusals wait `interval`
(and are only logged at debug level, like every failure: `status.report_error` says it)."""


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
        vouched: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._calls = calls
        self._vouched = vouched
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
        self._taken: bytes | None = None
        self._unsent_in_row = 0
        self._truncation_noted = False
        self.error: str | None = None
        """Why the last report failed; None once one succeeded."""
        self.sent = 0
        """Reports the service took."""
        self.left_out = 0
        """Unchanged periodic reports not sent: the watch stream stood for them."""

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
        if self._may_leave_out(body):
            self.left_out += 1
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
            self._taken, self._unsent_in_row = body, 0
            self._backoff.connected()
            return False
        self._failed(str(error_from_status(response.status_code, response.content)))
        status = response.status_code
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or status in RETRYABLE_STATUSES:
            self._endpoints.failed()
            return True
        return False  # a refusal (an older service, another token's id): next interval

    def _may_leave_out(self, body: bytes) -> bool:
        """Whether `body` need not be sent: the service took these very bytes, the open
        stream stands for a periodic report, and not every `VOUCHED_REPORTS_EVERY`-th."""
        if body != self._taken or not self._vouched():
            return False
        self._unsent_in_row += 1
        return self._unsent_in_row < VOUCHED_REPORTS_EVERY

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
