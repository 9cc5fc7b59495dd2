"""Retry decisions shared by every client: which answers are retried, how long to wait."""

from __future__ import annotations

import email.utils
from collections.abc import Collection

RETRY_STATUS = 429
"""Retried like a 5xx by default, honouring its `Retry-After`."""

SERVER_ERRORS = range(500, 600)
"""The 5xx statuses, retried by default."""

MAX_BACKOFF_EXPONENT = 62
"""Caps the doubling so that the float stays finite whatever the retry count."""


def is_retryable_status(status_code: int, on_status: Collection[int] | None = None) -> bool:
    """Whether an answer is worth another try: `on_status` when given, else 429 and 5xx."""
    if on_status is not None:
        return status_code in on_status
    return status_code == RETRY_STATUS or status_code in SERVER_ERRORS


def backoff_bound(retry: int, initial: float, cap: float) -> float:
    """Upper bound of the delay before retry number `retry` (1 = the first retry)."""
    return min(cap, initial * 2.0 ** min(retry - 1, MAX_BACKOFF_EXPONENT))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)
