"""Local document files: YAML (several documents with `---`) or JSON, one file or a folder,
or standard input (`-`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from configsvc_schemas.wire import KIND_NAME_RULE, NAME_RULE, is_valid_kind_name, is_valid_name

from configsvc.cli._errors import FileError
from configsvc.cli._refs import DocRef

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
JSON_SUFFIXES = frozenset({".json"})
CONFIG_SUFFIXES = YAML_SUFFIXES | JSON_SUFFIXES
STDIN = Path("-")
"""`-f -`: the documents on standard input (YAML, or JSON: one object or a list)."""
STDIN_NAME = "<stdin>"
WHAT_TO_GIVE = "give a YAML or JSON file, a folder of them, or - for standard input"


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
        return f"{source_name(self.path)}:{self.line}"

    @property
    def is_kind(self) -> bool:
        """A kind file (top-level `kind` and `schema`) rather than a document."""
        return "schema" in self.body

    def kind_name(self) -> str:
        """The kind a kind file registers, or `FileError` when missing or invalid."""
        value = self.body.get("kind")
        if not isinstance(value, str) or not value:
            raise FileError(
                source_name(self.path), "the kind file has no kind (its name)", self.line
            )
        if not is_valid_kind_name(value):
            raise FileError(
                source_name(self.path), f"invalid kind {value!r}: {KIND_NAME_RULE}", self.line
            )
        return value

    def ref(self) -> DocRef:
        """The document's `namespace/name`, or `FileError` when missing or invalid."""
        parts = []
        for field in ("namespace", "name"):
            value = self.body.get(field)
            if not isinstance(value, str) or not value:
                raise FileError(
                    source_name(self.path),
                    f"the document has no {field} (a document names its namespace, name, "
                    "kind and spec)",
                    self.line,
                )
            if not is_valid_name(value):
                raise FileError(
                    source_name(self.path), f"invalid {field} {value!r}: {NAME_RULE}", self.line
                )
            parts.append(value)
        return DocRef(parts[0], parts[1])


def is_config_file(path: Path) -> bool:
    """A YAML or JSON file that is not hidden (editors' swap and backup files are)."""
    return path.suffix.lower() in CONFIG_SUFFIXES and not path.name.startswith(".")


def source_name(path: Path) -> str:
    """How messages name where documents came from: the path, or `<stdin>`."""
    return STDIN_NAME if path == STDIN else str(path)


def find_files(path: Path) -> list[Path]:
    """`path` itself, or the config files under the folder `path` (recursively, sorted);
    `-` (standard input) stands for itself."""
    if path == STDIN:
        return [STDIN]
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
    raise FileError(str(path), f"no such file or folder; {WHAT_TO_GIVE}")


def load_file(path: Path) -> list[LocalDocument]:
    """The documents of one file (or of standard input, for `-`), or `FileError` with the
    line of the problem."""
    if path == STDIN:
        return _stdin_documents(sys.stdin.read())
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileError(str(path), "not UTF-8 text") from None
    except OSError as exc:
        raise FileError(str(path), exc.strerror or str(exc)) from None
    if path.suffix.lower() in JSON_SUFFIXES:
        return _json_documents(path, text)
    return _yaml_documents(path, text)


def _stdin_documents(text: str) -> list[LocalDocument]:
    """JSON when it parses as JSON (e.g. `-o json` output, also a list), else YAML."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass  # YAML's flow style starts so too
        else:
            return _json_values(STDIN, value)
    documents = _yaml_documents(STDIN, text)
    if not documents:
        raise FileError(
            STDIN_NAME, "no documents on standard input; pipe YAML or JSON into apply -f -"
        )
    return documents


def _yaml_documents(path: Path, text: str) -> list[LocalDocument]:
    documents = []
    for line, value in _yaml_values(path, text):
        if value is None:
            continue
        if path == STDIN and isinstance(value, list):
            documents += _json_values(path, value, line)
            continue
        if not isinstance(value, dict):
            raise FileError(source_name(path), "a document must be a mapping (kind, spec, …)", line)
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
        hint = yaml_hint(problem)
        raise FileError(source_name(path), f"invalid YAML: {problem}{column}{hint}", line) from None
    except yaml.YAMLError as exc:
        raise FileError(source_name(path), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


YAML_HINTS = (
    ("found character '\\t'", "YAML indents with spaces, not tabs"),
    ("mapping values are not allowed", "check the indentation, and quote a value holding ': '"),
    ("could not find expected ':'", "a key on this line or the one above lacks its ': '"),
    ("expected ',' or", "close the bracket opened above, or separate its items with ','"),
    ("expected <block end>", "check the indentation of this line and the one above"),
    ("found unexpected end of stream", "close the quote or bracket opened above"),
    ("did not find expected", "check the indentation, and close open quotes or brackets"),
)
"""PyYAML's words for the common mistakes, and what fixes them."""


def yaml_hint(problem: str) -> str:
    """`: <what to do>` for a PyYAML problem, or nothing when none is known."""
    for words, hint in YAML_HINTS:
        if problem.startswith(words):
            return f"; {hint}"
    return ""


def _json_documents(path: Path, text: str) -> list[LocalDocument]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(
            source_name(path), f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from None
    return _json_values(path, value)


def _json_values(path: Path, value: Any, line: int = 1) -> list[LocalDocument]:
    """One document object, or a list of them."""
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in values):
        raise FileError(
            source_name(path), "expected one document (a mapping) or a list of them", line
        )
    return [LocalDocument(path, line, item) for item in values]
