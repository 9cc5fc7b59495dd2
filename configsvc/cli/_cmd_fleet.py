"""`fleet NS` and `status NS/NAME`: which SDK instances applied what, and who refused it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from configsvc_schemas.wire import FLEET_PATH, FLEET_SUFFIX

from configsvc.cli._cmd_docs import RefArgument
from configsvc.cli._http import doc_path
from configsvc.cli._options import OutputOption, TokenOption, UrlOption
from configsvc.cli._refs import parse_namespace
from configsvc.cli._session import open_session

NamespaceArgument = Annotated[
    str, typer.Argument(metavar="NS", parser=parse_namespace, help="The namespace")
]
FLEET_COLUMNS = [
    "INSTANCE",
    "APP",
    "LABELS",
    "MODE",
    "VERSIONS",
    "LAST SEEN",
    "LAG",
    "REJECTED",
]
NONE = "-"


def fleet(
    ctx: typer.Context,
    namespace: NamespaceArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """List the SDK instances of a namespace: versions applied, last seen, lag, rejections.

    LAG is the time from the edit to the instance applying it, for its latest change.
    """
    with open_session(ctx, url, token, output) as s:
        found = s.api.get(FLEET_PATH, params={"namespace": namespace})
        now = datetime.now(UTC)
        rows = [_fleet_row(item, namespace, now) for item in found["items"]]
        s.out.emit(found, lambda: s.out.table(FLEET_COLUMNS, rows))
        if s.out.is_table and not rows:
            s.out.note(f"no SDK instance reports for {namespace}")


def status(
    ctx: typer.Context,
    ref: RefArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """How many instances are on which version of a document, and who rejected it, why."""
    with open_session(ctx, url, token, output) as s:
        found = s.api.get(doc_path(ref.namespace, ref.name, FLEET_SUFFIX))
        s.out.emit(found, lambda: _print_status(s.out, str(ref), found))


def _print_status(out: Any, ref: str, found: dict[str, Any]) -> None:
    version = found["version"]
    instances = found["instances"]
    on_version: dict[str, int] = found.get("on_version", {})
    current = on_version.get(str(version), 0)
    out.line(
        f"{ref}: version {version} (updated {found.get('updated_at')}): "
        f"{current} of {instances} instance{'' if instances == 1 else 's'} on it"
    )
    lag = found.get("lag_ms")
    if lag:
        out.line(f"lag to version {version}: p50 {lag['p50']} ms, max {lag['max']} ms")
    if on_version:
        rows = [[f"v{v}", n, "current" if v == str(version) else ""] for v, n in on_version.items()]
        out.table(["VERSION", "INSTANCES", ""], rows)
    rejected = found.get("rejected", [])
    if rejected:
        out.line(f"rejected by {len(rejected)} instance{'' if len(rejected) == 1 else 's'}:")
        out.table(
            ["INSTANCE", "APP", "VERSION", "ERROR"],
            [
                [r["instance"], r.get("app") or NONE, f"v{r['version']}", r["error"]]
                for r in rejected
            ],
        )


def _fleet_row(item: dict[str, Any], namespace: str, now: datetime) -> list[str]:
    prefix = f"{namespace}/"
    documents: dict[str, Any] = item.get("documents", {})
    versions = _versions(documents, prefix)
    latest = max(documents.values(), key=lambda entry: entry.get("applied_at", ""), default=None)
    lag = latest.get("lag_ms") if latest else None
    rejected = _versions(item.get("rejected", {}), prefix)
    labels = ",".join(f"{k}={v}" for k, v in sorted(item.get("labels", {}).items()))
    return [
        item["instance"],
        item.get("app") or NONE,
        labels or NONE,
        item.get("mode") or NONE,
        versions or NONE,
        _ago(item.get("last_seen"), now),
        NONE if lag is None else f"{lag} ms",
        rejected or NONE,
    ]


def _versions(entries: dict[str, Any], prefix: str) -> str:
    """`name=vN name2=vM`, by name."""
    return " ".join(
        f"{key.removeprefix(prefix)}=v{entry['version']}" for key, entry in sorted(entries.items())
    )


def _ago(stamp: str | None, now: datetime) -> str:
    """`12s ago` (`just now` within a second); the stamp as is if it does not parse."""
    if not stamp:
        return NONE
    try:
        seconds = (now - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return stamp
    return "just now" if seconds < 1 else f"{seconds:.0f}s ago"
