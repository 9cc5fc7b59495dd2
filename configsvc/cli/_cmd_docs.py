"""`get`, `list`, `delete` and `history`: reading and removing documents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from configsvc.cli._http import doc_path
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import to_yaml
from configsvc.cli._refs import DocRef, parse_namespace, parse_ref
from configsvc.cli._session import Session, confirm, open_session

RefArgument = Annotated[
    DocRef, typer.Argument(metavar="NS/NAME", parser=parse_ref, help="namespace/name")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]
ShowSecretsOption = Annotated[
    bool,
    typer.Option(
        "--show-secrets", help="Show secret values in clear (if the token may read secrets)"
    ),
]
DOCUMENT_FIELDS = ("namespace", "name", "kind", "spec", "message")


def get(
    ctx: typer.Context,
    ref: RefArgument,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="An earlier version")
    ] = None,
    show_secrets: ShowSecretsOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Show a document (its current version, or --version V).

    The table output is the document as YAML, which `apply -f` takes back as it is.
    """
    with open_session(ctx, url, token, output, data_dir) as s:
        path = doc_path(ref.namespace, ref.name, *(("versions", version) if version else ()))
        document = s.api.get(path)
        if show_secrets:
            note_hidden_secrets(s)
        else:
            document["spec"] = s.masker.mask(document["kind"], document.get("spec"))
        s.out.emit(document, lambda: _print_document(s, document))


def note_hidden_secrets(s: Session) -> None:
    """Say so when --show-secrets cannot show them: the service masks them for this token."""
    caller = s.api.get("/v1/whoami")
    if not caller.get("secrets"):
        s.out.note(
            f"token {caller.get('name')!r} may not read secrets: they show as ****"
            " (a token created with secrets: true may)"
        )


def _print_document(s: Session, document: dict[str, Any]) -> None:
    header = (
        f"# {document['namespace']}/{document['name']}  version {document.get('version')}"
        f"  revision {document.get('revision')}"
        f"  updated {document.get('updated_at')} by {document.get('updated_by')}"
    )
    body = {key: document[key] for key in DOCUMENT_FIELDS if document.get(key) is not None}
    s.out.yaml(header + "\n" + to_yaml(body))


def list_(
    ctx: typer.Context,
    namespace: Annotated[
        str | None,
        typer.Argument(
            metavar="[NS]", parser=parse_namespace, help="A namespace; none: list namespaces"
        ),
    ] = None,
    show_secrets: ShowSecretsOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """List the documents of a namespace (or, with no NS, the namespaces)."""
    with open_session(ctx, url, token, output, data_dir) as s:
        if namespace is None:
            found = s.api.get("/v1/namespaces")
            s.out.emit(found, lambda: s.out.table(["NAMESPACE"], [[n] for n in found["items"]]))
            return
        listing = s.api.get(f"/v1/configs/{namespace}")
        if show_secrets:
            note_hidden_secrets(s)
        else:
            for doc in listing["items"]:
                doc["spec"] = s.masker.mask(doc["kind"], doc.get("spec"))
        s.out.emit(listing, lambda: _print_listing(s, listing["items"]))


def _print_listing(s: Session, items: list[dict[str, Any]]) -> None:
    columns = ["NAME", "KIND", "VERSION", "UPDATED", "BY", "MESSAGE"]
    keys = ["name", "kind", "version", "updated_at", "updated_by", "message"]
    s.out.table(columns, [[doc.get(key) for key in keys] for doc in items])
    if not items:
        s.out.note("no documents")


def delete(
    ctx: typer.Context,
    ref: RefArgument,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Delete a document; its history is kept (and `rollback` can bring it back)."""
    with open_session(ctx, url, token, output, data_dir) as s:
        path = doc_path(ref.namespace, ref.name)
        if not yes:
            current = s.api.get(path)
            confirm(f"Delete {ref} ({current['kind']}, version {current['version']})?")
        result = s.api.request("DELETE", path).json()
        s.out.emit(result, lambda: s.out.line(f"deleted {ref} (version {result.get('version')})"))


def history(
    ctx: typer.Context,
    ref: RefArgument,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Only the newest N versions")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """The versions of a document, newest first: version, when, who, action, message."""
    with open_session(ctx, url, token, output, data_dir) as s:
        params = {"limit": limit} if limit else None
        found = s.api.get(doc_path(ref.namespace, ref.name, "history"), params)
        items = found["items"]
        columns = ["VERSION", "WHEN", "WHO", "ACTION", "MESSAGE"]
        keys = ["version", "updated_at", "updated_by", "action", "message"]
        rows = [[row.get(key) for key in keys] for row in items]
        s.out.emit(found, lambda: s.out.table(columns, rows))
