"""The public face: a sorted, complete `__all__`, typed, and the kinds re-exported."""

from __future__ import annotations

import types
from pathlib import Path

import configsvc_client
import configsvc_schemas
from configsvc_client import kinds, testing


def isort_order(names: list[str]) -> list[str]:
    """CONSTANTS, then Classes, then functions (ruff's RUF022 order)."""
    return sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))


def test_all_is_sorted_and_complete() -> None:
    exported = configsvc_client.__all__
    assert exported == isort_order(exported)
    public = {
        name
        for name, value in vars(configsvc_client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(exported) == public
    for name in exported:
        assert getattr(configsvc_client, name).__doc__, f"{name} has no docstring"


def test_kinds_are_the_schema_models() -> None:
    assert kinds.__all__ == isort_order(kinds.__all__)
    assert kinds.ModelEndpoints is configsvc_schemas.ModelEndpoints
    assert set(kinds.BUILTIN_KINDS) == {"ModelEndpoints", "RateLimits", "AuthKeys"}
    assert testing.__all__ == ["InMemorySource"]


def test_typed_marker_is_shipped() -> None:
    assert (Path(configsvc_client.__file__).parent / "py.typed").exists()
