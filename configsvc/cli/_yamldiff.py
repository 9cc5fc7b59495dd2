"""Unified diffs of documents as YAML, with secret values masked on both sides."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from configsvc.cli._output import Printer
from configsvc.cli._secrets import SecretMasker, Shown

CONTEXT_LINES = 3
Side = tuple[str, Any]
"""One side of a diff: the document's kind and spec."""

_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def normalize(value: Any) -> Any:
    """`value` with integral floats as ints, so that `600` and `600.0` compare equal."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def document_lines(kind: str | None, spec: Any) -> list[str]:
    """The lines of a document's kind and spec as YAML, keys sorted (empty for None)."""
    if kind is None:
        return []
    text = yaml.safe_dump(
        {"kind": kind, "spec": normalize(spec)},
        sort_keys=True,
        allow_unicode=True,
        default_flow_style=False,
    )
    return text.splitlines()


def diff_documents(
    masker: SecretMasker, old: Side | None, new: Side | None, from_label: str, to_label: str
) -> list[str]:
    """The unified diff from `old` to `new` (None: absent), secrets masked; [] when equal."""
    old_spec, new_spec = masker.mask_pair(old, new)
    lines = difflib.unified_diff(
        document_lines(old[0] if old else None, old_spec),
        document_lines(new[0] if new else None, new_spec),
        fromfile=from_label,
        tofile=to_label,
        n=CONTEXT_LINES,
        lineterm="",
    )
    return [_display(line) for line in lines]


def _display(line: str) -> str:
    for shown in Shown:
        line = line.replace(shown.value, shown.display)
    return line


def print_diff(printer: Printer, lines: list[str]) -> None:
    """The diff on stdout, coloured on a terminal."""
    for line in lines:
        style = next((style for prefix, style in _STYLES if line.startswith(prefix)), None)
        printer.line(line, style)
