"""FileSource: documents from YAML files in a directory, reloaded when the files change.

It needs `watchfiles` and `PyYAML` (the `files` extra of the `configsvc-client`
distribution), imported only when a file source is made.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from configsvc_client._options import ClientOptions
from configsvc_client._types import (
    Document,
    ResumePoint,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Update,
)

if TYPE_CHECKING:
    import watchfiles

YAML_SUFFIXES = (".yaml", ".yml")
FILES_USER = "files"
FILES_EXTRA = "pip install 'configsvc-client[files]' (or the configsvc distribution)"


def _require_libraries() -> None:
    """ImportError naming the extra to install when watchfiles or PyYAML is missing."""
    try:
        import watchfiles  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"ConfigClient.from_files needs {exc.name or 'watchfiles and PyYAML'}: {FILES_EXTRA}"
        ) from exc


class FileSource:
    """Every `*.yaml`/`*.yml` file under `directory` (recursively), each holding one or
    more documents (`namespace`, `name`, `kind`, `spec`, optional `message`).

    Each reload that changes something yields a full snapshot; a document's `version`
    counts its changes since the source was created and `revision` counts reloads. A
    reload that finds a broken file applies nothing and yields INTERRUPTED with the
    file's problem; the next good reload recovers.
    """

    name = "files"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        options: ClientOptions,
        namespaces: Iterable[str] | None = None,
    ) -> None:
        _require_libraries()
        self.directory = Path(directory)
        self._options = options
        self._namespaces = frozenset(namespaces) if namespaces is not None else None
        self._stop = asyncio.Event()
        self._revision = 0
        self._documents: dict[str, Document] = {}

    async def sync(self, since: ResumePoint) -> AsyncIterator[Update]:
        import watchfiles

        self._stop = asyncio.Event()  # of the loop this runs on (a new one after fork)
        yield self._reload()
        debounce_ms = max(1, int(self._options.reload_debounce * 1000))
        async for _changes in watchfiles.awatch(
            self.directory,
            debounce=debounce_ms,
            step=max(1, min(50, debounce_ms // 2)),
            stop_event=self._stop,
            watch_filter=_yaml_only,
        ):
            yield self._reload()
        yield Update(SourceState.OFF)

    async def aclose(self) -> None:
        """Stop watching (the watcher notices within a few milliseconds)."""
        self._stop.set()

    def _reload(self) -> Update:
        import yaml

        try:
            found = self._read_all()
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return Update(SourceState.INTERRUPTED, error=SourceErrorInfo("invalid_files", str(exc)))
        changed = set(found) != set(self._documents) or any(
            _content(found[key]) != _content(self._documents[key]) for key in found
        )
        if not changed and self._revision:
            return Update(SourceState.VALID)
        self._revision += 1
        documents: dict[str, Document] = {}
        for key, doc in found.items():
            previous = self._documents.get(key)
            if previous is not None and _content(previous) == _content(doc):
                documents[key] = previous
            else:
                version = previous.version + 1 if previous else 1
                documents[key] = _versioned(doc, version, self._revision)
        self._documents = documents
        return Update(
            SourceState.VALID, snapshot=Snapshot(self._revision, tuple(documents.values()))
        )

    def _read_all(self) -> dict[str, Document]:
        import yaml

        if not self.directory.is_dir():
            raise ValueError(f"{self.directory} is not a directory")
        found: dict[str, Document] = {}
        where: dict[str, Path] = {}
        for path in sorted(self.directory.rglob("*")):
            if path.suffix not in YAML_SUFFIXES or not path.is_file():
                continue
            with path.open(encoding="utf-8") as file:
                for index, data in enumerate(yaml.safe_load_all(file)):
                    if data is None:
                        continue
                    doc = _document(data, f"{path} (document {index + 1})")
                    if self._namespaces is not None and doc.namespace not in self._namespaces:
                        continue
                    if doc.key in found:
                        raise ValueError(f"{doc.key} is defined in {where[doc.key]} and {path}")
                    found[doc.key] = doc
                    where[doc.key] = path
        return found


def _document(data: Any, where: str) -> Document:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: a document must be a mapping")
    missing = [f for f in ("namespace", "name", "kind", "spec") if f not in data]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    try:
        return Document.from_wire({**data, "updated_by": FILES_USER})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _content(doc: Document) -> tuple[str, Any, str | None]:
    return doc.kind, doc.spec, doc.message


def _versioned(doc: Document, version: int, revision: int) -> Document:
    return Document(
        namespace=doc.namespace,
        name=doc.name,
        kind=doc.kind,
        spec=doc.spec,
        version=version,
        revision=revision,
        updated_by=doc.updated_by,
        message=doc.message,
    )


def _yaml_only(_change: watchfiles.Change, path: str) -> bool:
    return path.endswith(YAML_SUFFIXES)
