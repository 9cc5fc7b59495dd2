"""`ModelEndpoints`: where to call a model, how long to wait, how to retry, what to fall back to.

Version 2 adds optional fields (every v1 document stays valid and means the same): weighted
`groups` of endpoints, per-`tasks` settings, `timeout.first_token/idle/total`, an
`adaptive` read timeout, `retry.on_status` and a circuit `breaker`.
"""

from __future__ import annotations

from typing import Annotated, Self
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
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_WINDOW = 30.0
DEFAULT_BREAKER_COOLDOWN = 30.0
DEFAULT_ADAPTIVE_PERCENTILE = 95.0
DEFAULT_ADAPTIVE_MULTIPLIER = 3.0
DEFAULT_ADAPTIVE_MIN = 1.0
DEFAULT_ADAPTIVE_MAX = 600.0
DEFAULT_ADAPTIVE_SAMPLES = 50
MAX_ADAPTIVE_SAMPLES = 10_000
RETRYABLE_STATUS_MIN = 400
RETRYABLE_STATUS_MAX = 599

HttpErrorStatus = Annotated[int, Field(ge=RETRYABLE_STATUS_MIN, le=RETRYABLE_STATUS_MAX)]
OptionalSeconds = PositiveSeconds | None
Weight = Annotated[float, Field(gt=0, description="a share of the calls, > 0")]


class Timeout(KindModel):
    """httpx-style timeouts in seconds; a local 34B model on CPU may need minutes to read.

    `first_token` and `idle` apply to streamed calls (time to the first body byte, longest
    gap between chunks); `total` bounds the whole call, retries and fallbacks included.
    """

    connect: PositiveSeconds = DEFAULT_CONNECT_TIMEOUT
    read: PositiveSeconds = DEFAULT_READ_TIMEOUT
    write: PositiveSeconds = DEFAULT_WRITE_TIMEOUT
    pool: PositiveSeconds = DEFAULT_POOL_TIMEOUT
    first_token: OptionalSeconds = None
    idle: OptionalSeconds = None
    total: OptionalSeconds = None


class Retry(KindModel):
    """Retry policy: `attempts` counts tries in all (1 = no retry); exponential backoff.

    `on_status` lists the answers worth another try; when omitted, 429 and every 5xx.
    """

    attempts: int = Field(default=DEFAULT_RETRY_ATTEMPTS, ge=1, le=MAX_RETRY_ATTEMPTS)
    backoff_initial: float = Field(default=DEFAULT_BACKOFF_INITIAL, ge=0)
    backoff_max: float = Field(default=DEFAULT_BACKOFF_MAX, ge=0)
    jitter: bool = True
    on_status: list[HttpErrorStatus] | None = Field(
        default=None, description="statuses retried (400-599); default: 429 and every 5xx"
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> Self:
        if self.backoff_max < self.backoff_initial:
            raise field_error(
                ("backoff_max",), "backoff_max must be >= backoff_initial", self.backoff_max
            )
        return self


class Breaker(KindModel):
    """Circuit breaker: after `failures` failed tries within `window` seconds the endpoint
    is skipped for `cooldown` seconds, then one trial call decides."""

    failures: int = Field(default=DEFAULT_BREAKER_FAILURES, ge=1)
    window: PositiveSeconds = DEFAULT_BREAKER_WINDOW
    cooldown: PositiveSeconds = DEFAULT_BREAKER_COOLDOWN


class Adaptive(KindModel):
    """A read timeout that follows observed latency: clamp(multiplier x the `percentile`
    of the last `samples` latencies, min, max), once `samples` were seen."""

    percentile: float = Field(default=DEFAULT_ADAPTIVE_PERCENTILE, gt=0, le=100)
    multiplier: float = Field(default=DEFAULT_ADAPTIVE_MULTIPLIER, ge=1)
    min: PositiveSeconds = DEFAULT_ADAPTIVE_MIN
    max: PositiveSeconds = DEFAULT_ADAPTIVE_MAX
    samples: int = Field(default=DEFAULT_ADAPTIVE_SAMPLES, ge=1, le=MAX_ADAPTIVE_SAMPLES)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min > self.max:
            raise field_error(("max",), "max must be >= min", self.max)
        return self


class TaskTimeout(KindModel):
    """The timeouts a task class sets; each one given replaces the endpoint's."""

    connect: OptionalSeconds = None
    read: OptionalSeconds = None
    write: OptionalSeconds = None
    pool: OptionalSeconds = None
    first_token: OptionalSeconds = None
    idle: OptionalSeconds = None
    total: OptionalSeconds = None


class TaskRetry(KindModel):
    """The retry settings a task class sets; each one given replaces the endpoint's."""

    attempts: int | None = Field(default=None, ge=1, le=MAX_RETRY_ATTEMPTS)
    backoff_initial: float | None = Field(default=None, ge=0)
    backoff_max: float | None = Field(default=None, ge=0)
    jitter: bool | None = None
    on_status: list[HttpErrorStatus] | None = None


class Task(KindModel):
    """Settings of one task class (e.g. `classify`, `codegen`), merged over each endpoint's."""

    timeout: TaskTimeout = Field(default_factory=TaskTimeout)
    retry: TaskRetry = Field(default_factory=TaskRetry)


class Endpoint(KindModel):
    """One model endpoint (an OpenAI-compatible base URL and a model name)."""

    base_url: str = Field(description="http or https URL, e.g. http://127.0.0.1:1234/v1")
    model: str = Field(min_length=1)
    api_key: str | None = secret_field("sent as `Authorization: Bearer <api_key>`")
    timeout: Timeout = Field(default_factory=Timeout)
    retry: Retry = Field(default_factory=Retry)
    breaker: Breaker | None = None
    adaptive: Adaptive | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


def merged_retry(retry: Retry, task: TaskRetry) -> Retry:
    """`retry` with the fields `task` sets replaced (a valid document keeps it valid)."""
    changes = task.model_dump(exclude_none=True)
    return retry.model_copy(update=changes) if changes else retry


def merged_timeout(timeout: Timeout, task: TaskTimeout) -> Timeout:
    """`timeout` with the fields `task` sets replaced."""
    changes = task.model_dump(exclude_none=True)
    return timeout.model_copy(update=changes) if changes else timeout


class ModelEndpoints(KindModel):
    """The endpoints a service may call, the default one and the fallbacks in order."""

    # (The docstring above is the kind's description in `configsvc schemas`: one line.)
    # `default` and `fallbacks` name endpoints or groups; a group spreads calls over its
    # endpoints by weight; names are unique across endpoints and groups.

    default: str = Field(description="the endpoint or group used by default")
    fallbacks: list[str] = Field(
        default_factory=list, description="endpoint or group names, tried in order"
    )
    groups: dict[str, Annotated[dict[str, Weight], Field(min_length=1)]] = Field(
        default_factory=dict, description="group name -> {endpoint name: weight > 0}"
    )
    tasks: dict[str, Task] = Field(
        default_factory=dict, description="task class -> settings merged over each endpoint's"
    )
    endpoints: dict[str, Endpoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_exist(self) -> Self:
        for group, members in self.groups.items():
            if group in self.endpoints:
                raise field_error(
                    ("groups", group), "names an endpoint too: names must be unique", group
                )
            for member in members:
                if member not in self.endpoints:
                    raise field_error(("groups", group, member), "must name an endpoint", member)
        if self.default not in self.endpoints and self.default not in self.groups:
            raise field_error(("default",), "must name an endpoint or a group", self.default)
        for index, name in enumerate(self.fallbacks):
            if name not in self.endpoints and name not in self.groups:
                raise field_error(("fallbacks", index), "must name an endpoint or a group", name)
        for task_name, task in self.tasks.items():
            for endpoint in self.endpoints.values():
                retry = merged_retry(endpoint.retry, task.retry)
                if retry.backoff_max < retry.backoff_initial:
                    raise field_error(
                        ("tasks", task_name, "retry", "backoff_max"),
                        "with an endpoint's retry settings, backoff_max must be >= backoff_initial",
                        retry.backoff_max,
                    )
        return self
