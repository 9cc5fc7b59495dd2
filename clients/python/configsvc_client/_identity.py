"""Who an SDK instance is: its instance id, app and labels, and the SDK's own name.

The instance id is by default `<host>-<pid>-<random hex>`, made afresh in a forked child.
It goes, with the labels, as headers on the watch request and the polls, and in every fleet
report.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from configsvc_schemas.wire import (
    APP_PATTERN,
    APP_RULE,
    INSTANCE_HEADER,
    INSTANCE_ID_RULE,
    INSTANCE_SUFFIX_BYTES,
    LABELS_HEADER,
    MAX_INSTANCE_ID_LENGTH,
    is_valid_instance_id,
    label_problems,
    labels_header,
    make_instance_id,
)

SDK_DISTRIBUTIONS = ("configsvc-client", "configsvc")
"""Where the SDK's version comes from: its own distribution, or the one that carries it."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The instance id, app and labels a client reports and names itself with."""

    instance: str
    app: str | None
    labels: Mapping[str, str]

    def headers(self) -> dict[str, str]:
        """`X-Configsvc-Instance` and `X-Configsvc-Labels`, for the watch request and polls."""
        return {INSTANCE_HEADER: self.instance, LABELS_HEADER: labels_header(self.labels)}


class IdentityRule:
    """What the user asked for, checked at once; `current()` gives this process's identity.

    The default id is `<host>-<pid>-<random hex>`, made once per process: a forked child
    gets a new one. An explicit `instance_id` is used as given, and as `<id>-<pid>` in a
    forked child (two processes must never report under one id).
    """

    def __init__(
        self, app: str | None, labels: Mapping[str, str] | None, instance_id: str | None
    ) -> None:
        if app is not None and not APP_PATTERN.fullmatch(app):
            raise ValueError(f"invalid app {app!r}: {APP_RULE}")
        labels = dict(labels or {})
        problems = label_problems(labels)
        if problems:
            raise ValueError("invalid labels: " + "; ".join(problems))
        if instance_id is not None and not is_valid_instance_id(instance_id):
            raise ValueError(f"invalid instance_id {instance_id!r}: {INSTANCE_ID_RULE}")
        self._app = app
        self._labels = labels
        self._explicit = instance_id
        self._pid = os.getpid()
        self._identity = Identity(instance_id or _default_id(), app, labels)

    def current(self) -> Identity:
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            if self._explicit:
                tail = f"-{pid}"
                instance = self._explicit[: MAX_INSTANCE_ID_LENGTH - len(tail)] + tail
            else:
                instance = _default_id()
            self._identity = Identity(instance, self._app, self._labels)
        return self._identity


def _default_id() -> str:
    suffix = secrets.token_hex(INSTANCE_SUFFIX_BYTES)
    return make_instance_id(socket.gethostname(), os.getpid(), suffix)


@functools.cache
def sdk_name() -> str:
    """`configsvc_client/<version>`."""
    for distribution in SDK_DISTRIBUTIONS:
        try:
            return f"configsvc_client/{importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "configsvc_client"
