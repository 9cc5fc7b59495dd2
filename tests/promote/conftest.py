"""The promotion tests use the REST API tests' fixtures (tokens, unchanged-state snapshots)
and the CLI tests' (the installed command, in a subprocess)."""

from cli.conftest import bare_cli, cli

from tests.api.conftest import make_token, unchanged

__all__ = ["bare_cli", "cli", "make_token", "unchanged"]
