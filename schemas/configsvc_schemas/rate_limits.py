"""`RateLimits`: how fast each caller may go, by requests and by model tokens."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from configsvc_schemas._base import KindModel, field_error


class Limit(KindModel):
    """A token bucket: refilled at a request rate, holding at most `burst` requests.

    Exactly one of `requests_per_second` and `requests_per_minute` is given.
    `tokens_per_minute` adds a second bucket charged by model tokens.
    """

    requests_per_second: float | None = Field(default=None, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1, description="bucket size in requests, >= 1")
    tokens_per_minute: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_rate(self) -> Self:
        given = [self.requests_per_second, self.requests_per_minute]
        if all(rate is None for rate in given):
            raise field_error(
                ("requests_per_second",),
                "give requests_per_second or requests_per_minute",
                None,
            )
        if all(rate is not None for rate in given):
            raise field_error(
                ("requests_per_minute",),
                "give requests_per_second or requests_per_minute, not both",
                self.requests_per_minute,
            )
        return self

    @property
    def rate_per_second(self) -> float:
        """The refill rate in requests per second."""
        if self.requests_per_second is not None:
            return self.requests_per_second
        assert self.requests_per_minute is not None
        return self.requests_per_minute / 60.0


class RateLimits(KindModel):
    """Named limits (`chat`, `embeddings`, ...) that services enforce per caller."""

    limits: dict[str, Limit] = Field(default_factory=dict)
