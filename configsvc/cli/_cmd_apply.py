"""`apply -f FILE|DIR|- [-m MSG] [--dry-run] [--watch]`: write local documents to the service."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from configsvc.cli._applier import Applier, Outcome
from configsvc.cli._errors import CliError
from configsvc.cli._files import STDIN, find_files
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._session import Session, open_session
from configsvc.cli._watchfolder import DEFAULT_DEBOUNCE_MS, watch_changes


def apply(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Option(
            "--file",
            "-f",
            help="A YAML/JSON file, a folder of them, or - for standard input (repeatable)",
        ),
    ],
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            help="Change message of documents that have none (or were read with get)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate on the service; store nothing")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep running; re-apply files as they change")
    ] = False,
    debounce: Annotated[
        int, typer.Option("--debounce", min=1, help="With --watch: ms to wait for more changes")
    ] = DEFAULT_DEBOUNCE_MS,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Create or update documents from files, one by one, and report each.

    Each document says: created, updated, unchanged (no new version is written for an
    identical document) or refused with the service's field paths. A folder is applied
    document by document, not as one transaction. Kind files (top-level `kind` and
    `schema`) are applied first, so a folder may hold kinds and their documents.
    `-f -` reads documents from standard input, e.g. from `get … -o yaml | sed …`.
    """
    check_sources(files, watch=watch)
    with open_session(ctx, url, token, output, data_dir) as s:
        applier = Applier(s.api, dry_run=dry_run, message=message)
        if watch:
            _watch(s, applier, files, debounce)
            return
        report = Reporter(s.out, stream=False)
        for outcome in applier.apply_files(_expand(files)):
            report(outcome)
        report.finish()


def _expand(roots: list[Path]) -> list[Path]:
    return [path for root in roots for path in find_files(root)]


def check_sources(roots: list[Path], *, watch: bool = False) -> None:
    """A usage error (exit 2) for standard input given twice, or with --watch."""
    given = sum(root == STDIN for root in roots)
    if given and watch:
        raise typer.BadParameter(
            "--watch follows files and folders, not standard input", param_hint="-f -"
        )
    if given > 1:
        raise typer.BadParameter("standard input can be read once", param_hint="-f -")


class Reporter:
    """Prints outcomes: successes on stdout, failures on stderr; with `stream`, each at once
    with the time (JSON lines or YAML documents for tools), else JSON/YAML as one list."""

    def __init__(self, out: Printer, *, stream: bool) -> None:
        self._out = out
        self._stream = stream
        self._outcomes: list[Outcome] = []

    def __call__(self, outcome: Outcome) -> None:
        stamp = time.strftime("%H:%M:%S  ") if self._stream else ""
        if outcome.failed:
            self._out.warn(stamp + outcome.describe())
        elif self._out.is_table:
            self._out.line(stamp + outcome.describe())
        if self._stream and not self._out.is_table:
            self._out.record(outcome.to_json())
        elif not self._stream:
            self._outcomes.append(outcome)

    def finish(self) -> None:
        """The collected outcomes as one list (JSON/YAML); `CliError` if any failed."""
        if not self._out.is_table:
            self._out.data([outcome.to_json() for outcome in self._outcomes])
        failed = sum(outcome.failed for outcome in self._outcomes)
        if failed and len(self._outcomes) > 1:
            raise CliError(f"{failed} of {len(self._outcomes)} documents not applied")
        if failed:
            raise typer.Exit(1)  # its one line is out already


def _watch(s: Session, applier: Applier, roots: list[Path], debounce: int) -> None:
    for root in roots:
        if not root.exists():
            raise CliError(f"{root}: no such file or folder")
    report = Reporter(s.out, stream=True)

    def apply_paths(paths: list[Path]) -> None:
        try:
            for outcome in applier.apply_files(paths):
                report(outcome)
        except CliError as exc:  # the service is unreachable or refuses the token: go on
            s.out.warn(exc.message)

    def on_ready() -> None:
        s.out.note(f"watching {', '.join(map(str, roots))} (Ctrl-C to stop)")
        apply_paths(_expand(roots))

    def on_change(changed: list[Path], removed: list[Path]) -> None:
        for path in removed:
            s.out.note(f"{path} removed; its documents stay on the service")
        apply_paths(changed)

    try:
        watch_changes(roots, on_ready, on_change, debounce_ms=debounce)
    except KeyboardInterrupt:
        s.out.note("stopped")
