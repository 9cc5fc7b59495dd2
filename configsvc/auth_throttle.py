"""Slowing token guessing: repeated 401s from one client address turn into 429s.

Past `max_failures` refused tokens within `window` seconds, an address gets 429
`too_many_attempts` with `Retry-After` for tokens not seen valid from it recently, without
the token being checked: a guesser learns nothing more until the window has moved on.
Tokens that authenticated from that address within the window keep working, so a shared
address (a NAT, a proxy) does not lock out its valid clients. Memory is bounded: at most
`max_addresses` addresses are followed (the least recently seen are forgotten).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from configsvc.errors import ApiError


class TooManyAttempts(ApiError):
    status = 429
    code = "too_many_attempts"


@dataclass(frozen=True)
class ThrottleOptions:
    max_failures: int = 20
    """Refused tokens from one address within `window` before it is throttled."""
    window: float = 60.0
    """Seconds over which failures count."""
    max_addresses: int = 100_000


@dataclass
class _Address:
    failures: deque[float] = field(default_factory=deque)
    good: dict[str, float] = field(default_factory=dict)
    """Token hashes that authenticated from this address, with when."""


class AuthThrottle:
    """Per client address: recent failures, and tokens seen valid."""

    def __init__(
        self, options: ThrottleOptions | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options or ThrottleOptions()
        self._clock = clock
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def check(self, address: str | None, token_hash: str) -> None:
        """Raise `TooManyAttempts` when `address` is throttled and the token was not seen
        valid from it within the window."""
        entry = self._entry(address) if address else None
        if entry is None or len(entry.failures) < self.options.max_failures:
            return
        now = self._clock()
        seen = entry.good.get(token_hash)
        if seen is not None and now - seen < self.options.window:
            return
        retry_after = max(1, math.ceil(entry.failures[0] + self.options.window - now))
        raise TooManyAttempts(
            f"too many refused tokens from this address; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def failed(self, address: str | None) -> None:
        if address:
            self._track(address).failures.append(self._clock())

    def succeeded(self, address: str | None, token_hash: str) -> None:
        if address:
            self._track(address).good[token_hash] = self._clock()

    def _track(self, address: str) -> _Address:
        entry = self._entry(address)
        if entry is None:
            entry = self._addresses[address] = _Address()
            if len(self._addresses) > self.options.max_addresses:
                self._addresses.popitem(last=False)
        return entry

    def _entry(self, address: str) -> _Address | None:
        """The address's entry, its old failures and tokens forgotten; None if unknown."""
        entry = self._addresses.get(address)
        if entry is None:
            return None
        self._addresses.move_to_end(address)
        horizon = self._clock() - self.options.window
        while entry.failures and entry.failures[0] < horizon:
            entry.failures.popleft()
        for token_hash in [h for h, at in entry.good.items() if at < horizon]:
            del entry.good[token_hash]
        return entry
