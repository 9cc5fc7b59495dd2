"""ConfigClient: live, typed configuration from configsvc (or files, or memory)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, overload

import httpx
from configsvc_schemas.wire import NAME_RULE, is_valid_name

from configsvc_client._binding import Binding, M, SpecMapping
from configsvc_client._cache import SnapshotCache
from configsvc_client._coordinator import Coordinator
from configsvc_client._fleet import FleetReporter
from configsvc_client._http import acquire_http, release_http, ssl_context
from configsvc_client._identity import IdentityRule
from configsvc_client._options import (
    DEFAULT_TLS,
    ClientOptions,
    resolve_tls,
    resolve_token,
    resolve_urls,
)
from configsvc_client._runtime import (
    Runtime,
    register_for_fork,
    shared_runtime,
    state_lock,
    unregister_for_fork,
)
from configsvc_client._sources.files import FileSource
from configsvc_client._sources.polling import PollingSource
from configsvc_client._sources.streaming import StreamingSource
from configsvc_client._state import ConfigState, DocumentCallback
from configsvc_client._status import ClientStatus, Mode
from configsvc_client._types import CallUsage, Document, Synchronizer

log = logging.getLogger("configsvc_client")


class CallCounter(Protocol):
    """What `report_calls` takes: anything that says its tries on a document's version (a
    `configsvc_client.live.LiveRouter`)."""

    def usage(self) -> CallUsage | None: ...


SourceFactory = Callable[[httpx.AsyncClient | None], tuple[Synchronizer, Synchronizer | None]]

_abandoned_after_fork: list[Any] = []


@dataclass
class _Run:
    """What one start() creates and stop() releases, all tied to one event loop."""

    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient | None = None
    shared_http: bool = False
    coordinator: Coordinator | None = field(default=None)
    reporter: FleetReporter | None = None


class ConfigClient:
    """Live configuration of `namespaces` from a configsvc service.

    Values arrive over a Server-Sent Events stream; while no stream is open the client
    polls every `poll_interval`; at start, with no service, it serves the last-known-good
    cache of `cache_dir`. Use it from threads (`start()`/`stop()`: the client runs on a
    shared background event loop) or from asyncio (`async with`: it runs on your loop).

    `url` (one URL, several separated by commas, or a list: tried in turn) defaults to
    `$CONFIGSVC_URL`, then `http://127.0.0.1:8080`; `token` to `$CONFIGSVC_TOKEN`, then
    the local admin token file. `poll_interval`, when given, overrides the one in
    `options`.

    For an `https://` service, `ca` (default `$CONFIGSVC_CA`) is a PEM file of the CAs to
    trust instead of the default bundle; `verify` is False to check nothing (tests only),
    or an `ssl.SSLContext` to use as it is (e.g. with a client certificate loaded).
    The client reports to the fleet view (`configsvc fleet NS`) which versions it applied
    and which its models rejected, within a second of each change and every
    `report_interval` seconds (default 30; `options.reports` has the rest), as `app` with
    `labels`, under `instance_id` (default `<host>-<pid>-<random hex>`; a forked child gets
    its own). Reports never hold up configuration; `stop()` says goodbye.
    """

    _identity: IdentityRule | None
    _urls: tuple[str, ...]
    _token: str | None

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        token: str | None = None,
        *,
        namespaces: str | Sequence[str],
        cache_dir: str | os.PathLike[str] | None = None,
        poll_interval: float | None = None,
        app: str | None = None,
        labels: Mapping[str, str] | None = None,
        instance_id: str | None = None,
        report_interval: float | None = None,
        options: ClientOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ca: str | os.PathLike[str] | None = None,
        verify: bool | ssl.SSLContext | None = None,
    ) -> None:
        tls = resolve_tls(ca, verify)
        if tls.ca is not None:
            try:
                ssl_context(tls)  # a bad CA file fails here, not in the background
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load the CA file {tls.ca}: {exc}") from None
        options = options or ClientOptions()
        if poll_interval is not None:
            options = options.replace(poll_interval=poll_interval)
        if report_interval is not None:
            options = options.replace(reports=options.reports.replace(interval=report_interval))
        names = _namespaces([namespaces] if isinstance(namespaces, str) else namespaces)
        urls = resolve_urls(url)
        resolved_token = resolve_token(token)
        identity = IdentityRule(app, labels, instance_id) if options.reports.enabled else None

        assert names is not None

        def sources(http: httpx.AsyncClient | None) -> tuple[Synchronizer, Synchronizer | None]:
            assert http is not None
            named = identity.current().headers() if identity is not None else {}
            return (
                StreamingSource(http, urls, names, resolved_token, options, identity=named),
                PollingSource(http, urls, names, resolved_token, options, identity=named),
            )

        self._setup(
            names,
            options,
            sources,
            cache_dir,
            needs_http=True,
            transport=transport,
            cache_token=resolved_token,
        )
        self._tls = tls
        self._identity = identity
        self._urls = urls
        self._token = resolved_token
        self._description = f"{', '.join(urls)} {list(names)}"

    @classmethod
    def from_files(
        cls,
        directory: str | os.PathLike[str],
        *,
        namespaces: str | Sequence[str] | None = None,
        options: ClientOptions | None = None,
    ) -> ConfigClient:
        """A client over the YAML files under `directory`, reloaded when they change.

        The same API with no service, for local development: each file holds documents
        (`namespace`, `name`, `kind`, `spec`); `namespaces` None takes every namespace.
        """
        options = options or ClientOptions()
        names = _namespaces([namespaces] if isinstance(namespaces, str) else namespaces)
        source = FileSource(directory, options, names)
        client = cls.from_source(source, namespaces=names, options=options)
        client._description = f"files in {os.fspath(directory)}"
        return client

    @classmethod
    def from_source(
        cls,
        source: Synchronizer,
        *,
        namespaces: str | Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        options: ClientOptions | None = None,
    ) -> ConfigClient:
        """A client fed by any `Synchronizer`, e.g. `configsvc_client.testing.InMemorySource`."""
        names = _namespaces([namespaces] if isinstance(namespaces, str) else namespaces)
        client = cls.__new__(cls)
        client._setup(
            names,
            options or ClientOptions(),
            lambda _http: (source, None),
            cache_dir,
            needs_http=False,
        )
        client._description = f"source {source.name}"
        return client

    def _setup(
        self,
        namespaces: tuple[str, ...] | None,
        options: ClientOptions,
        sources: SourceFactory,
        cache_dir: str | os.PathLike[str] | None,
        *,
        needs_http: bool,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_token: str | None = None,
    ) -> None:
        self._namespaces = namespaces
        self._options = options
        self._sources = sources
        self._cache = (
            SnapshotCache(cache_dir, namespaces, cache_token) if cache_dir is not None else None
        )
        self._needs_http = needs_http
        self._transport = transport
        self._tls = DEFAULT_TLS
        self._state = ConfigState(namespaces)
        self._run: _Run | None = None
        self._runtime: Runtime | None = None
        self._restarting = False
        self._lifecycle = threading.Lock()
        self._description = ""
        self._identity = None
        self._urls = ()
        self._token = None
        self._counters: list[CallCounter] = []

    # -- reading ----------------------------------------------------------------------

    @property
    def namespaces(self) -> tuple[str, ...] | None:
        """The watched namespaces (None: every namespace a file or memory source has)."""
        return self._namespaces

    @property
    def options(self) -> ClientOptions:
        return self._options

    @property
    def status(self) -> ClientStatus:
        """Where values come from now (`mode`), the last revision, their age, the last error."""
        run = self._run
        if run is not None and run.coordinator is not None:
            status = run.coordinator.status()
            if run.reporter is not None and run.reporter.error is not None:
                status = dataclasses.replace(status, report_error=run.reporter.error)
            return status
        mode = Mode.CACHED if self._restarting else Mode.STOPPED
        return ClientStatus(mode, self._state.revision, None, None)

    @property
    def instance_id(self) -> str | None:
        """The id this client reports and names itself with (None: it does not report)."""
        return self._identity.current().instance if self._identity is not None else None

    @overload
    def bind(self, key: str) -> Binding[SpecMapping]: ...

    @overload
    def bind(self, key: str, model: type[M]) -> Binding[M]: ...

    def bind(self, key: str, model: type[Any] | None = None) -> Binding[Any]:
        """A live view of document `"namespace/name"` parsed as `model`: any pydantic model
        (a kind from `configsvc_client.kinds`, a stricter subclass of one, or a model
        generated from a user kind's JSON Schema). With no model, `value` is the spec as a
        read-only mapping (`SpecMapping`), whatever the document's kind.

        Bind before or after `start()`; a version that fails `model` is not applied.
        """
        with state_lock():
            return self._state.bind(key, model or SpecMapping)

    def on_change(self, callback: DocumentCallback) -> DocumentCallback:
        """Call `callback(old, new)` with `Document`s for every applied version of any
        document (new is None on delete); usable as a decorator. Callbacks run on the
        client's event loop, once per version, in order; an exception is logged."""
        with state_lock():
            self._state.add_listener(callback)
        return callback

    def report_calls(self, router: CallCounter) -> None:
        """Report what a live helper's router (`LiveHTTPClient(...).router`,
        `LiveTransport(...).router`, or a `LiveRouter` you share) does: its tries and failed
        tries on the document's version, while that version is a staged rollout's candidate
        given to this instance, so that the rollout can abort by itself on its error rate
        (`abort_on.error_rate`). Nothing is reported for other versions."""
        with state_lock():
            if router not in self._counters:
                self._counters.append(router)

    def _call_usages(self) -> list[CallUsage]:
        return [u for u in (c.usage() for c in list(self._counters)) if u is not None]

    def get(self, key: str) -> Document | None:
        """The applied version of document `"namespace/name"`, or None."""
        return self._state.get(key)

    def documents(self) -> dict[str, Document]:
        """Every applied document by `"namespace/name"` (a copy)."""
        with state_lock():
            return self._state.documents()

    # -- async face -------------------------------------------------------------------

    async def astart(self) -> None:
        """Start on the running loop; return once values are known (stream, poll or cache;
        a client started before returns at once with its last values, then catches up).

        Raises `ConfigUnavailable` after `options.start_timeout` with neither service nor
        cache (at once for a refused token with no cache).
        """
        await self._launch()
        run = self._run
        assert run is not None and run.coordinator is not None
        try:
            await run.coordinator.wait_ready(self._options.start_timeout)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop, and finish writing the cache; values stay readable. Idempotent."""
        run, self._run = self._run, None
        if run is None:
            return
        if run.loop is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(_close_run(run), run.loop)
            await asyncio.wrap_future(future)
        else:
            await _close_run(run)

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _launch(self) -> None:
        if self._run is not None:
            raise RuntimeError("this ConfigClient is already started")
        run = _Run(loop=asyncio.get_running_loop())
        self._run = run
        try:
            if self._transport is not None:
                run.http = httpx.AsyncClient(
                    transport=self._transport, verify=ssl_context(self._tls)
                )
            elif self._needs_http:
                run.http, run.shared_http = acquire_http(self._tls), True
            primary, fallback = self._sources(run.http)
            run.reporter = self._reporter(run, primary)
            run.coordinator = Coordinator(
                self._state,
                primary,
                fallback,
                options=self._options,
                cache=self._cache,
                on_state_change=run.reporter.changed if run.reporter is not None else None,
            )
            await run.coordinator.start()
            if run.reporter is not None:
                run.reporter.start()
        except BaseException:
            self._run = None
            await _close_run(run)
            raise
        finally:
            self._restarting = False

    def _reporter(self, run: _Run, primary: Synchronizer) -> FleetReporter | None:
        if self._identity is None or run.http is None or self._namespaces is None:
            return None

        def status() -> ClientStatus:
            assert run.coordinator is not None
            return run.coordinator.status()

        return FleetReporter(
            run.http,
            self._urls,
            self._token,
            self._identity.current(),
            self._namespaces,
            self._options.reports,
            self._state,
            status,
            calls=self._call_usages,
            vouched=lambda: isinstance(primary, StreamingSource) and primary.vouched,
        )

    # -- sync face --------------------------------------------------------------------

    def start(self) -> None:
        """Start on the process's shared background loop; block until values are known.

        Raises `ConfigUnavailable` as `astart()` does. Safe across `os.fork()`: a running
        client restarts in the child with its last values.
        """
        with self._lifecycle:
            if self._run is not None:
                raise RuntimeError("this ConfigClient is already started")
            runtime = shared_runtime()
            if runtime.in_thread():
                raise RuntimeError("start() inside a config callback would deadlock")
            self._runtime = runtime
            register_for_fork(self)
            try:
                runtime.submit(self.astart()).result()
            except BaseException:
                unregister_for_fork(self)
                self._runtime = None
                raise

    def stop(self) -> None:
        """Stop and finish writing the cache; values stay readable. Idempotent."""
        with self._lifecycle:
            runtime, self._runtime = self._runtime, None
            unregister_for_fork(self)
            if runtime is None:
                if self._run is not None:
                    raise RuntimeError("started with astart(): use `await client.aclose()`")
                return
            future = runtime.submit(self.aclose())
            if runtime.in_thread():
                return
            try:
                future.result(timeout=self._options.stop_timeout)
            except TimeoutError:
                log.warning("config client did not stop within %s s", self._options.stop_timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's loop thread is gone; start again on a new one."""
        run, self._run = self._run, None
        if run is None or self._runtime is None:
            return
        _abandoned_after_fork.append(run)  # the parent's sockets: keep, never touch
        self._lifecycle = threading.Lock()
        self._restarting = True
        self._runtime = shared_runtime()
        register_for_fork(self)
        future = self._runtime.submit(self._launch())
        future.add_done_callback(_log_restart_failure)

    def __repr__(self) -> str:
        return f"<ConfigClient {self._description} {self.status.mode}>"


async def _close_run(run: _Run) -> None:
    try:
        if run.reporter is not None:
            await run.reporter.aclose()
        if run.coordinator is not None:
            await run.coordinator.aclose()
    finally:
        if run.http is not None:
            if run.shared_http:
                await release_http(run.http)
            else:
                await run.http.aclose()


def _log_restart_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("config client could not restart after fork: %s", future.exception())


def _namespaces(names: Iterable[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    unique = tuple(dict.fromkeys(names))
    if not unique:
        raise ValueError("give at least one namespace")
    for name in unique:
        if not is_valid_name(name):
            raise ValueError(f"invalid namespace {name!r}: {NAME_RULE}")
    return unique
