"""`rollout start | status | promote | pause | resume | abort`: staged rollouts of a document.

A rollout offers a candidate version (from a document file) to a growing, hash-chosen share
of the SDK instances, step by step, until it is promoted or aborted (by hand, or by the
service when the instances' reports meet `--abort-on-…`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from configsvc.cli._cmd_docs import RefArgument
from configsvc.cli._errors import CliError, FileError
from configsvc.cli._files import load_file
from configsvc.cli._http import doc_path
from configsvc.cli._options import OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._refs import DocRef
from configsvc.cli._session import open_session

app = typer.Typer(
    help="Staged rollouts: a candidate version for a growing share of the SDK instances."
)

DEFAULT_STEPS = "10,50,100"
DEFAULT_STEP_SECONDS = 300.0
NONE = "-"
CANDIDATE_FIELDS = ("kind", "spec", "message")

ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-m", help="Kept in the history with the transition")
]


def _steps(value: str) -> list[float]:
    try:
        steps = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: percentages separated by commas") from None
    if not steps:
        raise typer.BadParameter("give at least two steps, the last 100 (e.g. 10,50,100)")
    return steps


def _labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, label = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r}: write labels as key=value", param_hint="--label")
        labels[key] = label
    return labels


@app.command()
def start(
    ctx: typer.Context,
    ref: RefArgument,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The candidate: a YAML/JSON document file")
    ],
    steps: Annotated[
        str,
        typer.Option(
            "--steps", help="Percentages of the matching instances, increasing, the last 100"
        ),
    ] = DEFAULT_STEPS,
    step_seconds: Annotated[
        float, typer.Option("--step-seconds", min=0.001, help="How long each step lasts")
    ] = DEFAULT_STEP_SECONDS,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Only instances with this label, k=v (repeatable)"),
    ] = None,
    abort_on_rejected: Annotated[
        int | None,
        typer.Option(
            "--abort-on-rejected", min=1, help="Abort when this many chosen instances reject it"
        ),
    ] = None,
    abort_on_error_rate: Annotated[
        float | None,
        typer.Option(
            "--abort-on-error-rate",
            min=0.0,
            max=1.0,
            help="Abort when the chosen instances' live helpers fail this share of their tries",
        ),
    ] = None,
    min_calls: Annotated[
        int | None,
        typer.Option("--min-calls", min=1, help="Tries before an error rate counts (default 20)"),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", help="The candidate's message (else the file's)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the candidate and the plan on the service; start nothing"
        ),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Start a rollout of the document in FILE as a candidate version of NS/NAME.

    The candidate takes the document's next version number; the current version stays for
    every instance the rollout does not choose. Plain writes of the document are refused
    until the rollout is promoted or aborted.
    """
    body = {**_candidate(file, ref), "steps": _steps(steps), "step_seconds": step_seconds}
    if message is not None:
        body["message"] = message
    body["match"] = {"labels": _labels(label or [])}
    abort_on: dict[str, Any] = {}
    if abort_on_rejected is not None:
        abort_on["rejected"] = abort_on_rejected
    if abort_on_error_rate is not None:
        abort_on["error_rate"] = abort_on_error_rate
    if min_calls is not None:
        abort_on["min_calls"] = min_calls
    body["abort_on"] = abort_on
    params = {"dry_run": "true"} if dry_run else None
    with open_session(ctx, url, token, output) as s:
        path = doc_path(ref.namespace, ref.name, "rollouts")
        rollout = s.api.request("POST", path, params=params, body=body).json()
        s.out.emit(rollout, lambda: _print_status(s.out, str(ref), rollout))


def _candidate(file: Path, ref: DocRef) -> dict[str, Any]:
    """The one document of `file`; it must not name another document than `ref`."""
    documents = load_file(file)
    if len(documents) != 1:
        raise FileError(str(file), f"holds {len(documents)} documents; a rollout takes one")
    (document,) = documents
    body = document.body
    for field, wanted in (("namespace", ref.namespace), ("name", ref.name)):
        given = body.get(field)
        if given is not None and given != wanted:
            raise CliError(f"{document.where}: the file is for {field} {given!r}, not {wanted!r}")
    return {field: body[field] for field in CANDIDATE_FIELDS if field in body}


@app.command()
def status(
    ctx: typer.Context,
    ref: RefArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """The document's latest rollout: state, step, the fleet on each version, transitions."""
    with open_session(ctx, url, token, output) as s:
        rollout = s.api.get(doc_path(ref.namespace, ref.name, "rollouts", "current"))
        s.out.emit(rollout, lambda: _print_status(s.out, str(ref), rollout))


def _action(action: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        ref: RefArgument,
        reason: ReasonOption = None,
        url: UrlOption = None,
        token: TokenOption = None,
        output: OutputOption = None,
    ) -> None:
        with open_session(ctx, url, token, output) as s:
            path = doc_path(ref.namespace, ref.name, "rollouts", "current", action)
            body = {"reason": reason} if reason else None
            rollout = s.api.request("POST", path, body=body).json()
            s.out.emit(rollout, lambda: _print_status(s.out, str(ref), rollout))

    command.__doc__ = help_text
    app.command(action)(command)


_action("promote", "Make the candidate the current version for every instance, now.")
_action("pause", "Stop the steps: the chosen instances keep the candidate.")
_action("resume", "Resume a paused rollout: its step goes on for what remained of it.")
_action("abort", "Send every chosen instance back to the current version.")


def _print_status(out: Printer, ref: str, rollout: dict[str, Any]) -> None:
    steps = ",".join(f"{step:g}" for step in rollout["steps"])
    if rollout.get("dry_run"):
        out.line("dry run: the candidate and the plan are valid; nothing was started")
    out.line(
        f"{ref}: rollout of version {rollout['version']} over version "
        f"{rollout['base_version']}: {rollout['state']}, step {rollout['step']} of "
        f"{len(rollout['steps'])} ({rollout['percent']:g} %; steps {steps}, "
        f"{rollout['step_seconds']:g} s each)"
    )
    labels = rollout.get("match", {}).get("labels") or {}
    if labels:
        out.line("only instances labelled " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    if rollout.get("next_step_at"):
        out.line(f"next step {_when(rollout['next_step_at'])}")
    if rollout.get("reason"):
        out.line(f"reason: {rollout['reason']}")
    fleet = rollout.get("fleet") or {}
    out.line(
        f"fleet: {fleet.get('chosen', 0)} of {fleet.get('instances', 0)} instances chosen, "
        f"{fleet.get('on_candidate', 0)} on the candidate"
        + (f"; error rate {fleet['error_rate']:.1%}" if fleet.get("error_rate") is not None else "")
    )
    on_version: dict[str, int] = fleet.get("on_version") or {}
    if on_version:
        rows = [
            [f"v{v}", n, "candidate" if v == str(rollout["version"]) else ""]
            for v, n in on_version.items()
        ]
        out.table(["VERSION", "INSTANCES", ""], rows)
    for rejection in fleet.get("rejected") or []:
        out.line(f"rejected by {rejection['instance']}: {rejection['error']}")
    out.table(
        ["WHEN", "WHO", "TRANSITION", "PERCENT"],
        [[t["at"], t["by"], t["message"], f"{t['percent']:g}"] for t in rollout["transitions"]],
    )


def _when(stamp: str) -> str:
    try:
        seconds = (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()
    except ValueError:
        return stamp
    return f"in {max(0.0, seconds):.0f} s ({stamp})"
