"""`watch NS [NS…]`: one flushed line per change as it happens, reconnecting by itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from configsvc_schemas.wire import EventName

from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._refs import parse_namespace
from configsvc.cli._session import open_session

if TYPE_CHECKING:
    from configsvc.cli._stream import StreamEvent

DEFAULT_IDLE_TIMEOUT = 45.0
"""Seconds of silence that count as a dropped stream (the service's keep-alive is 15 s)."""
DEFAULT_MAX_DELAY = 30.0


def watch(
    ctx: typer.Context,
    namespaces: Annotated[
        list[str],
        typer.Argument(metavar="NS...", parser=parse_namespace, help="Namespaces to watch"),
    ],
    since: Annotated[
        int | None,
        typer.Option("--since", min=0, help="Start after this revision (default: a snapshot)"),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option("--idle-timeout", min=0.01, help="Seconds of silence that count as a drop"),
    ] = DEFAULT_IDLE_TIMEOUT,
    max_delay: Annotated[
        float,
        typer.Option("--max-delay", min=0.01, help="Longest wait in seconds between reconnects"),
    ] = DEFAULT_MAX_DELAY,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Print each change as it happens: time, revision, action, document, version.

    The action is put, delete, rollback (with the version it restored) or rollout (a staged
    rollout's promotion).

    The first line is a snapshot (how many documents there are); after a dropped stream
    it reconnects and resumes where it left off, so no change is missed or repeated.
    One line per event, flushed, so that it works in a pipe; Ctrl-C stops it.
    """
    from configsvc.cli._stream import Follower, StreamOptions  # the SDK's parser: only here

    with open_session(ctx, url, token, output, data_dir) as s:
        follower = Follower(
            s.api,
            namespaces,
            StreamOptions(idle_timeout=idle_timeout, max_delay=max_delay),
            lambda event: _print(s.out, event),
            s.out.note,
            since=since,
        )
        try:
            follower.run()
        except KeyboardInterrupt:
            s.out.note("stopped")


def summary(event: StreamEvent, now: datetime | None = None) -> dict[str, Any]:
    """The fields of one output line (and of one JSON line with `-o json`).

    `action` is `snapshot`, `delete`, or what wrote a put's version: `put` or `rollback`
    (then `rolled_back_to` names the version it restored; a service that does not say
    means `put`)."""
    data = event.data
    line: dict[str, Any] = {
        "time": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revision": event.revision,
        "action": event.kind,
    }
    if event.kind == EventName.SNAPSHOT:
        items = data.get("items") or []
        line.update(namespaces=data.get("namespaces"), documents=len(items))
        return line
    line.update(namespace=data.get("namespace"), name=data.get("name"))
    line.update(version=data.get("version"))
    if event.kind == EventName.PUT:
        line.update(action=data.get("action") or EventName.PUT)
        line.update(rolled_back_to=data.get("rolled_back_to"))
    return line


def describe(line: dict[str, Any]) -> tuple[str, str]:
    """The subject and the detail of one line for people, e.g. `prod/chat-models` and
    `to version 3: now version 5` for a rollback."""
    if line["action"] == EventName.SNAPSHOT:
        return ",".join(line["namespaces"] or []), f"{line['documents']} documents"
    subject = f"{line['namespace']}/{line['name']}"
    version = line["version"]
    if version is None:
        return subject, ""
    if line.get("rolled_back_to") is not None:
        return subject, f"to version {line['rolled_back_to']}: now version {version}"
    return subject, f"version {version}"


def _print(out: Printer, event: StreamEvent) -> None:
    line = summary(event)
    if not out.is_table:
        out.record(line)
        return
    subject, detail = describe(line)
    action = line["action"]
    text = f"{line['time']}  {line['revision'] or '-':>8}  {action:<8}  {subject}  {detail}"
    out.line(text.rstrip())
