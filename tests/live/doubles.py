"""Test doubles for the live helpers: a value that tests change, a clock that sleeps fast."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from configsvc_schemas import AuthKeys, ModelEndpoints, RateLimits

T = TypeVar("T")


class Settable(Generic[T]):
    """A `LiveValue` whose value the test sets, like a Binding the service pushed to."""

    def __init__(self, value: T | None = None) -> None:
        self.value: T | None = value


class FakeClock:
    """Monotonic time that only moves when someone sleeps on it (or `advance` is called)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def models(**spec: Any) -> ModelEndpoints:
    return ModelEndpoints.model_validate(spec)


def limits(**limits: Any) -> RateLimits:
    return RateLimits.model_validate({"limits": limits})


def keys(*entries: dict[str, Any]) -> AuthKeys:
    return AuthKeys.model_validate({"keys": list(entries)})
