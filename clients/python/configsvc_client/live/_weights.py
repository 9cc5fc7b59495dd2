"""Weighted picks that honour the weights across calls, smoothly (stride scheduling, the
heap form of nginx's smooth weighted round robin): over any run of calls each member gets
its share of the total weight, interleaved rather than in bursts, in O(log n) a pick."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping


class WeightedPicker:
    """Picks members of one group in proportion to their weights.

    Each member advances by 1/weight each time it is picked; the member furthest behind
    goes next (ties in document order). A member that is not eligible (an open breaker)
    is passed over and then brought level with the one picked, so it gets no burst of
    catch-up calls when it comes back.
    """

    __slots__ = ("_by_weight", "_heap", "_stride", "weights")

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)
        self._stride = {name: 1.0 / weight for name, weight in self.weights.items()}
        self._heap = [
            (stride, index, name) for index, (name, stride) in enumerate(self._stride.items())
        ]
        heapq.heapify(self._heap)
        order = {name: index for index, name in enumerate(self.weights)}
        self._by_weight = sorted(self.weights, key=lambda name: (-self.weights[name], order[name]))

    def pick(
        self, eligible: Callable[[str], bool] | None = None, *, commit: bool = True
    ) -> str | None:
        """The next member (None when none is eligible); `commit=False` only peeks."""
        heap = self._heap
        passed: list[tuple[float, int, str]] = []
        chosen: tuple[float, int, str] | None = None
        while heap:
            if eligible is None or eligible(heap[0][2]):
                chosen = heap[0]
                break
            passed.append(heapq.heappop(heap))
        if chosen is not None and commit:
            at, index, name = chosen
            heapq.heapreplace(heap, (at + self._stride[name], index, name))
            passed = [(max(p, at), i, n) for p, i, n in passed]
        for entry in passed:
            heapq.heappush(heap, entry)
        return chosen[2] if chosen is not None else None

    def rest(self, first: str | None) -> Iterator[str]:
        """The other members, heaviest first (ties in document order): the failover order."""
        return (name for name in self._by_weight if name != first)
