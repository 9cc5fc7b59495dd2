"""The `configsvc` command-line interface; it talks to the service over HTTP only."""

from configsvc.cli._main import main

__all__ = ["main"]
