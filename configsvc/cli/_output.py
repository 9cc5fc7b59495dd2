"""Writing results: JSON or YAML for tools, aligned tables and coloured text for people.

Data goes to stdout; notes, prompts and failures go to stderr, so that `-o json` output can
be piped as it is. Colour only on a terminal (and never with `NO_COLOR`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from configsvc.cli._options import OutputFormat

PIPE_WIDTH = 10_000
"""Console width off a terminal: wide enough that tables never wrap in a pipe."""


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


class Printer:
    """Writes one command's results in the chosen output format."""

    def __init__(
        self, fmt: OutputFormat, stdout: Console | None = None, stderr: Console | None = None
    ) -> None:
        self.fmt = fmt
        self.console = stdout or make_console()
        self.err = stderr or make_console(stderr=True)

    @property
    def is_table(self) -> bool:
        return self.fmt is OutputFormat.TABLE

    def emit(self, value: Any, table: Callable[[], None]) -> None:
        """`value` as JSON or YAML, or whatever `table` prints for people."""
        if self.is_table:
            table()
        else:
            self.data(value)

    def data(self, value: Any) -> None:
        """`value` as JSON (also for `table`) or YAML."""
        text = to_yaml(value) if self.fmt is OutputFormat.YAML else to_json(value) + "\n"
        sys.stdout.write(text)
        sys.stdout.flush()

    def record(self, value: Any) -> None:
        """One record of a stream, flushed: a JSON line, or a YAML document."""
        if self.fmt is OutputFormat.YAML:
            text = "---\n" + to_yaml(value)
        else:
            text = json.dumps(value, ensure_ascii=False) + "\n"
        sys.stdout.write(text)
        sys.stdout.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Aligned columns under a bold header; cells are shown as plain text."""
        table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        if self.console.is_terminal:
            self.console.print(table)
            return
        with self.console.capture() as captured:
            self.console.print(table)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
        sys.stdout.flush()

    def line(self, text: str, style: str | None = None) -> None:
        """One line on stdout, flushed."""
        self.console.print(Text(text, style=style or ""))

    def yaml(self, text: str) -> None:
        """YAML text on stdout, highlighted on a terminal."""
        if self.console.is_terminal:
            self.console.print(Syntax(text.rstrip("\n"), "yaml", background_color="default"))
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def note(self, text: str) -> None:
        """One line for people on stderr."""
        self.err.print(Text(text, style="dim"))

    def warn(self, text: str) -> None:
        """One failure line on stderr (the command goes on)."""
        self.err.print(Text(f"error: {text}", style="red"))
