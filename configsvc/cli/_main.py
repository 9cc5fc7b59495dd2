"""`main()`: run the CLI; a failure is one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from configsvc.cli._app import build_app
from configsvc.cli._errors import CliError

PROG_NAME = "configsvc"
DEBUG_ENV = "CONFIGSVC_DEBUG"
"""Set to 1 to see the traceback of an unexpected error."""


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: parse `argv` (default: `sys.argv[1:]`), run, exit."""
    command = typer.main.get_command(build_app())
    try:
        command.main(args=argv, prog_name=PROG_NAME)
    except CliError as exc:
        _fail(exc.message)
    except OSError as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc} (set {DEBUG_ENV}=1 for details)")
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for details)")


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(1)
