"""The public face of configsvc_client.live: a sorted, complete __all__."""

from __future__ import annotations

import types

import configsvc_client.live as live


def test_all_is_sorted_and_complete() -> None:
    assert live.__all__ == sorted(live.__all__)
    public = {
        name
        for name, value in vars(live).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(live.__all__) == public
