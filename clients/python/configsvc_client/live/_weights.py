"""Smooth weighted round robin (as nginx does): over any run of calls each member gets
its share of the total weight, interleaved rather than in bursts."""

from __future__ import annotations

from collections.abc import Callable, Mapping


class WeightedPicker:
    """Picks members of one group in proportion to their weights.

    Each pick adds every eligible member's weight to its running score, takes the highest
    and subtracts the eligible total from it. Members that are not eligible (an open
    breaker) neither gain nor lose, so the others share their calls meanwhile.
    """

    __slots__ = ("_order", "_scores", "weights")

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)
        self._order = tuple(self.weights)
        self._scores = dict.fromkeys(self._order, 0.0)

    def pick(self, eligible: Callable[[str], bool] | None = None, *, commit: bool = True) -> str | None:
        """The next member (None when no member is eligible); `commit=False` only peeks."""
        best: str | None = None
        best_score = 0.0
        total = 0.0
        scores = self._scores
        for name in self._order:
            if eligible is not None and not eligible(name):
                continue
            weight = self.weights[name]
            total += weight
            score = scores[name] + weight
            if best is None or score > best_score:
                best, best_score = name, score
        if best is not None and commit:
            for name in self._order:
                if eligible is None or eligible(name):
                    scores[name] += self.weights[name]
            scores[best] -= total
        return best

    def rest(self, first: str) -> list[str]:
        """The other members, heaviest first (ties in document order): the failover order."""
        others = [name for name in self._order if name != first]
        return sorted(others, key=lambda name: -self.weights[name])
