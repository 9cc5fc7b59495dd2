"""Local document files: YAML (several documents with `---`) or JSON, one file or a folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from configsvc_schemas.wire import KIND_NAME_RULE, is_valid_kind_name, is_valid_name

from configsvc.cli._errors import FileError
from configsvc.cli._refs import DocRef

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
JSON_SUFFIXES = frozenset({".json"})
CONFIG_SUFFIXES = YAML_SUFFIXES | JSON_SUFFIXES


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps timestamps as strings, as they are on the wire."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class LocalDocument:
    """One document read from a file: where it starts and its fields as written."""

    path: Path
    line: int
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_kind(self) -> bool:
        """A kind file (top-level `kind` and `schema`) rather than a document."""
        return "schema" in self.body

    def kind_name(self) -> str:
        """The kind a kind file registers, or `FileError` when missing or invalid."""
        value = self.body.get("kind")
        if not isinstance(value, str) or not value:
            raise FileError(str(self.path), "the kind file has no kind (its name)", self.line)
        if not is_valid_kind_name(value):
            raise FileError(str(self.path), f"invalid kind {value!r}: {KIND_NAME_RULE}", self.line)
        return value

    def ref(self) -> DocRef:
        """The document's `namespace/name`, or `FileError` when missing or invalid."""
        parts = []
        for field in ("namespace", "name"):
            value = self.body.get(field)
            if not isinstance(value, str) or not value:
                raise FileError(str(self.path), f"the document has no {field}", self.line)
            if not is_valid_name(value):
                raise FileError(str(self.path), f"invalid {field} {value!r}", self.line)
            parts.append(value)
        return DocRef(parts[0], parts[1])


def is_config_file(path: Path) -> bool:
    """A YAML or JSON file that is not hidden (editors' swap and backup files are)."""
    return path.suffix.lower() in CONFIG_SUFFIXES and not path.name.startswith(".")


def find_files(path: Path) -> list[Path]:
    """`path` itself, or the config files under the folder `path` (recursively, sorted)."""
    if path.is_dir():
        return sorted(
            found
            for found in path.rglob("*")
            if found.is_file()
            and is_config_file(found)
            and not any(part.startswith(".") for part in found.relative_to(path).parts)
        )
    if path.is_file():
        return [path]
    raise FileError(str(path), "no such file or folder")


def load_file(path: Path) -> list[LocalDocument]:
    """The documents of one file, or `FileError` with the line of the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileError(str(path), "not UTF-8 text") from None
    except OSError as exc:
        raise FileError(str(path), exc.strerror or str(exc)) from None
    if path.suffix.lower() in JSON_SUFFIXES:
        return _json_documents(path, text)
    return _yaml_documents(path, text)


def _yaml_documents(path: Path, text: str) -> list[LocalDocument]:
    documents = []
    for line, value in _yaml_values(path, text):
        if value is None:
            continue
        if not isinstance(value, dict):
            raise FileError(str(path), "a document must be a mapping (kind, spec, …)", line)
        documents.append(LocalDocument(path, line, value))
    return documents


def _yaml_values(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot parse"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise FileError(str(path), f"invalid YAML: {problem}{column}", line) from None
    except yaml.YAMLError as exc:
        raise FileError(str(path), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _json_documents(path: Path, text: str) -> list[LocalDocument]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(
            str(path), f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from None
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in values):
        raise FileError(str(path), "JSON must hold one document object or a list of them", 1)
    return [LocalDocument(path, 1, item) for item in values]
