"""Puts `configsvc_schemas` into the SDK's sdist and wheel.

The package lives at `schemas/configsvc_schemas` of the repository, outside this project's
root, and is shared with the service. Built from the repository, it is taken from there;
built from an sdist (which holds a copy at its root), from that copy. Only its sources
(`*.py`, `py.typed`) are included. An editable install copies nothing: `dev-mode-dirs`
puts both packages' folders of the checkout on the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "configsvc_schemas"
SHARED = Path("..", "..", "schemas", PACKAGE)
"""Where the package is in the repository, relative to this file."""
SOURCES = ("*.py", "py.typed")


class SharedSchemasHook(BuildHookInterface):
    """Adds each source file of `configsvc_schemas` to the build."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        root = Path(self.root)
        found = [path for path in (root / SHARED, root / PACKAGE) if path.is_dir()]
        if not found:
            raise FileNotFoundError(
                f"{PACKAGE} is neither at {root / SHARED} (a repository checkout) nor at "
                f"{root / PACKAGE} (an sdist)"
            )
        source = found[0].resolve()
        for pattern in SOURCES:
            for path in sorted(source.glob(pattern)):
                build_data["force_include"][str(path)] = f"{PACKAGE}/{path.name}"
