"""`ModelEndpoints`: where to call a model, how long to wait, how to retry, what to fall back to."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from configsvc_schemas._base import KindModel, PositiveSeconds, field_error, secret_field

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_POOL_TIMEOUT = 5.0
DEFAULT_RETRY_ATTEMPTS = 3
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
MAX_RETRY_ATTEMPTS = 20


class Timeout(KindModel):
    """httpx-style timeouts in seconds; a local 34B model on CPU may need minutes to read."""

    connect: PositiveSeconds = DEFAULT_CONNECT_TIMEOUT
    read: PositiveSeconds = DEFAULT_READ_TIMEOUT
    write: PositiveSeconds = DEFAULT_WRITE_TIMEOUT
    pool: PositiveSeconds = DEFAULT_POOL_TIMEOUT


class Retry(KindModel):
    """Retry policy: `attempts` counts tries in all (1 = no retry); exponential backoff."""

    attempts: int = Field(default=DEFAULT_RETRY_ATTEMPTS, ge=1, le=MAX_RETRY_ATTEMPTS)
    backoff_initial: float = Field(default=DEFAULT_BACKOFF_INITIAL, ge=0)
    backoff_max: float = Field(default=DEFAULT_BACKOFF_MAX, ge=0)
    jitter: bool = True

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> Self:
        if self.backoff_max < self.backoff_initial:
            raise field_error(
                ("backoff_max",), "backoff_max must be >= backoff_initial", self.backoff_max
            )
        return self


class Endpoint(KindModel):
    """One model endpoint (an OpenAI-compatible base URL and a model name)."""

    base_url: str = Field(description="http or https URL, e.g. http://127.0.0.1:1234/v1")
    model: str = Field(min_length=1)
    api_key: str | None = secret_field("sent as `Authorization: Bearer <api_key>`")
    timeout: Timeout = Field(default_factory=Timeout)
    retry: Retry = Field(default_factory=Retry)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


class ModelEndpoints(KindModel):
    """The endpoints a service may call, the default one and the fallbacks in order."""

    default: str = Field(description="the name of the endpoint used by default")
    fallbacks: list[str] = Field(default_factory=list, description="endpoint names, in order")
    endpoints: dict[str, Endpoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_exist(self) -> Self:
        if self.default not in self.endpoints:
            raise field_error(("default",), "must name an endpoint", self.default)
        for index, name in enumerate(self.fallbacks):
            if name not in self.endpoints:
                raise field_error(("fallbacks", index), "must name an endpoint", name)
        return self
