"""`export NS [--dir DIR]`: a namespace's documents as files that `apply -f` takes back.

Secret values are `****` unless `--show-secrets` is given and the token may read them; a
`****` applied back keeps the value the service holds at that place (into a namespace that
holds none, give the values themselves). Files are written mode 0600 in a 0700 folder.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from configsvc_schemas.wire import namespace_path

from configsvc.cli._cmd_docs import ShowSecretsOption, note_hidden_secrets
from configsvc.cli._errors import CliError
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import to_yaml
from configsvc.cli._refs import parse_namespace
from configsvc.cli._session import Session, open_session

EXPORTED_FIELDS = ("namespace", "name", "kind", "spec")
"""What a file keeps: what `apply` needs (the service sets versions and authors again)."""
DIR_MODE = 0o700


def export(
    ctx: typer.Context,
    namespace: Annotated[
        str, typer.Argument(metavar="NS", parser=parse_namespace, help="The namespace")
    ],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", "-d", help="Write one NAME.yaml per document here (default: stdout)"),
    ] = None,
    show_secrets: ShowSecretsOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Write the documents of NS as YAML that `configsvc apply -f` takes back.

    To stdout as one YAML stream (`-o json`: a JSON list), or with --dir one file per
    document. Secret values show as **** unless --show-secrets (and the token may read them).
    """
    with open_session(ctx, url, token, output, data_dir) as s:
        listing = s.api.get(namespace_path(namespace))
        if show_secrets:
            note_hidden_secrets(s)
        documents = [_exported(s, item, show_secrets) for item in listing["items"]]
        if not documents:
            s.out.note(f"namespace {namespace} holds no documents")
        if directory is None:
            _to_stdout(s, documents, listing)
            return
        written = _to_files(directory, documents, listing)

        def table() -> None:
            for row in written:
                s.out.line(f"wrote {row['path']}  ({row['ref']} version {row['version']})")

        s.out.emit(written, table)


@dataclass(frozen=True, slots=True)
class Exported:
    """One document as exported: the fields a file keeps, and the version they are of."""

    body: dict[str, Any]
    version: int

    @property
    def ref(self) -> str:
        return f"{self.body['namespace']}/{self.body['name']}"

    def text(self, revision: int) -> str:
        """The YAML, under a comment that says where it came from."""
        header = f"# {self.ref} version {self.version} (exported at revision {revision})\n"
        return header + to_yaml(self.body)


def _exported(s: Session, document: dict[str, Any], show_secrets: bool) -> Exported:
    body = {field: document[field] for field in EXPORTED_FIELDS}
    if not show_secrets:
        body["spec"] = s.masker.mask(document["kind"], document.get("spec"))
    return Exported(body, int(document["version"]))


def _to_stdout(s: Session, documents: list[Exported], listing: dict[str, Any]) -> None:
    if not s.out.is_table:
        s.out.data([document.body for document in documents])
        return
    s.out.yaml("---\n".join(document.text(listing["revision"]) for document in documents))


def _to_files(
    directory: Path, documents: list[Exported], listing: dict[str, Any]
) -> list[dict[str, Any]]:
    """Write each document to `directory/NAME.yaml` whole (a reader never sees half a file),
    mode 0600 (it may hold secret values)."""
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {directory}: {exc.strerror or exc}") from None
    written = []
    for document in documents:
        path = directory / f"{document.body['name']}.yaml"
        _write_whole(path, document.text(listing["revision"]))
        written.append({"ref": document.ref, "version": document.version, "path": str(path)})
    return written


def _write_whole(path: Path, text: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
