"""The public face of configsvc_client.live: a sorted, complete, documented __all__."""

from __future__ import annotations

import types

import configsvc_client.live as live


def isort_order(names: list[str]) -> list[str]:
    """CONSTANTS, then Classes, then functions (ruff's RUF022 order)."""
    return sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))


def test_all_is_sorted_and_complete() -> None:
    assert live.__all__ == isort_order(live.__all__)
    public = {
        name
        for name, value in vars(live).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(live.__all__) == public
    for name in live.__all__:
        value = getattr(live, name)
        if not isinstance(value, str):
            assert value.__doc__, f"{name} has no docstring"
