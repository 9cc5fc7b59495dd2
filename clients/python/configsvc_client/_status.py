"""ClientStatus: where a client's values come from, how fresh they are, what went wrong."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from configsvc_client._types import Revision


class Mode(enum.StrEnum):
    """Where the values come from now. A `str`, so `status.mode == "streaming"` holds."""

    STREAMING = "streaming"
    """A stream is open (for `from_files`: the directory is watched); changes arrive at once."""
    POLLING = "polling"
    """No stream, but polls answer; changes arrive within `poll_interval`."""
    CACHED = "cached"
    """Neither answers: serving the last value (from memory or the cache file)."""
    CONNECTING = "connecting"
    """Started, no value yet and nothing has answered (only seen while start() waits)."""
    STOPPED = "stopped"
    """Not started, or stopped; the last values stay readable."""


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """A consistent snapshot of a client's state."""

    mode: Mode
    revision: Revision | None
    """The highest store revision applied (None before any value)."""
    age: float | None
    """Seconds since the values were last confirmed current by the service (or the files):
    an event, a keep-alive, a poll. None before any."""
    error: str | None
    """The last problem, or None: a code such as `"unauthorized"` or `"forbidden"` (a
    refused token: the last values stay and retries slow down), `"unreachable: ..."`,
    `"silent: ..."`, or `"invalid_document: <ns/name> vN rejected: <field>: <why>"`."""
    cache_error: str | None = None
    """Why the last write of the cache file failed (a full disk, no permission), or None:
    the values are applied, but a start without the service would find an older cache."""
    report_error: str | None = None
    """Why the last report to the fleet view failed (None once one succeeds, and when the
    client does not report). Reports never hold up configuration: they only retry."""
