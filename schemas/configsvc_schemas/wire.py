"""The wire contract that the service, the CLI and the SDK share, each fact stated once.

Names and their rule, API paths, roles, the SSE event names and headers, the admin token's
file and the default data dir, and the JSON error shape. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

# ---- names -------------------------------------------------------------------------------

NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
"""Namespaces, document names and token names (use `fullmatch`)."""

NAME_RULE = "1-63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a-z or 0-9"

NAMESPACE_PATTERN_RULE = re.compile(r"[a-z0-9._*-]{1,63}")
"""A token's namespace pattern: a name with `*` wildcards (`prod`, `team-a-*`, `*`)."""


def is_valid_name(value: str) -> bool:
    """Whether `value` is a valid namespace, document or token name."""
    return NAME_PATTERN.fullmatch(value) is not None


KIND_NAME_PATTERN = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
"""A kind's name, CamelCase like the built-ins (`ModelEndpoints`, `AgentRoles`; `fullmatch`)."""

KIND_NAME_RULE = "1-64 characters of A-Z, a-z, 0-9, starting with A-Z (CamelCase, e.g. AgentRoles)"


def is_valid_kind_name(value: str) -> bool:
    """Whether `value` is a valid kind name."""
    return KIND_NAME_PATTERN.fullmatch(value) is not None


def split_key(key: str) -> tuple[str, str]:
    """`"ns/name"` -> `("ns", "name")`; ValueError unless both parts are valid names."""
    namespace, sep, name = key.partition("/")
    if not sep or not is_valid_name(namespace) or not is_valid_name(name):
        raise ValueError(f"a document is addressed as 'namespace/name' ({NAME_RULE}), not {key!r}")
    return namespace, name


# ---- paths -------------------------------------------------------------------------------

API_PREFIX = "/v1"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
NAMESPACES_PATH = f"{API_PREFIX}/namespaces"
CONFIGS_PATH = f"{API_PREFIX}/configs"
SCHEMAS_PATH = f"{API_PREFIX}/schemas"
TOKENS_PATH = f"{API_PREFIX}/tokens"
WHOAMI_PATH = f"{API_PREFIX}/whoami"
WATCH_PATH = f"{API_PREFIX}/watch"


def namespace_path(ns: str) -> str:
    return f"{CONFIGS_PATH}/{ns}"


def document_path(ns: str, name: str) -> str:
    return f"{CONFIGS_PATH}/{ns}/{name}"


def schema_path(kind: str) -> str:
    return f"{SCHEMAS_PATH}/{kind}"


# ---- roles -------------------------------------------------------------------------------


class Role(enum.StrEnum):
    """`reader` reads and watches; `writer` also writes; `admin` also manages tokens."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Higher ranks may do everything lower ones may."""
        return _RANKS[self]


_RANKS = {Role.READER: 0, Role.WRITER: 1, Role.ADMIN: 2}

ADMIN_NAME = "admin"
"""The name of the service's own admin token."""

# ---- local defaults ----------------------------------------------------------------------

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "CONFIGSVC_URL"
TOKEN_ENV = "CONFIGSVC_TOKEN"  # noqa: S105 - a variable name
CA_ENV = "CONFIGSVC_CA"
"""A PEM file of the CAs that the CLI and the SDK trust for an `https://` service URL."""
DATA_DIR_ENV = "CONFIGSVC_DATA_DIR"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
APP_DIR_NAME = "configsvc"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The service's data dir: `$CONFIGSVC_DATA_DIR`, else `$XDG_DATA_HOME/configsvc`, else
    `~/.local/share/configsvc`. The service, the CLI and the SDK all use this rule, so the
    CLI and SDK find the local admin token that `configsvc serve` wrote."""
    env = os.environ if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_DIR_NAME


# ---- the watch stream --------------------------------------------------------------------


class EventName(enum.StrEnum):
    """The `event:` field of the watch stream's events."""

    SNAPSHOT = "snapshot"
    PUT = "put"
    DELETE = "delete"


EVENT_STREAM = "text/event-stream"
LAST_EVENT_ID = "Last-Event-ID"
KEEPALIVE_COMMENT = b": keep-alive\n\n"

# ---- secrets -----------------------------------------------------------------------------

SECRET_MARK = "x-configsvc-secret"  # noqa: S105 - a schema key
"""JSON Schema key set to true on string properties that hold secrets (masked as `****`)."""

MASK = "****"
"""What a secret value is replaced with for readers that may not see it."""

# ---- errors ------------------------------------------------------------------------------


class ErrorDetail(TypedDict, total=False):
    """One problem: where (`loc`, a field path) and what (`msg`)."""

    loc: list[str | int]
    msg: str
    type: str
    document: str


class ErrorInfo(TypedDict):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorBody(TypedDict):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorInfo


def error_message(body: Any) -> str | None:
    """The `message` of an error body, or None when `body` is not one."""
    try:
        message = body["error"]["message"]
    except (KeyError, TypeError):
        return None
    return str(message) if message else None


# ---- the fleet: which SDK instance applied what ------------------------------------------

FLEET_PATH = f"{API_PREFIX}/fleet"
FLEET_REPORTS_PATH = f"{FLEET_PATH}/reports"
FLEET_SUFFIX = "fleet"
"""`GET /v1/configs/{ns}/{name}/fleet`: the fleet of one document."""


def fleet_report_path(instance: str) -> str:
    """`DELETE` it to say goodbye."""
    return f"{FLEET_REPORTS_PATH}/{instance}"


def document_fleet_path(ns: str, name: str) -> str:
    return f"{document_path(ns, name)}/{FLEET_SUFFIX}"


INSTANCE_HEADER = "X-Configsvc-Instance"
"""Sent by the SDK on its watch request and polls: its instance id."""
LABELS_HEADER = "X-Configsvc-Labels"
"""Sent by the SDK on its watch request and polls: its labels as a compact JSON object."""
STREAM_LIVENESS_HEADER = "X-Configsvc-Fleet-Liveness"
"""Answered on a watch stream by a service that counts the open stream, when it names an
instance (`INSTANCE_HEADER`) reported with the stream's token, as that instance's periodic
fleet report: while it is open, the SDK reports only changes."""
STREAM_LIVENESS = "stream"
"""The value of `STREAM_LIVENESS_HEADER`."""

MAX_INSTANCE_ID_LENGTH = 128
INSTANCE_ID_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_INSTANCE_ID_LENGTH - 1}}}")
INSTANCE_ID_RULE = (
    "1-128 characters of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit"
)
APP_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
APP_RULE = "1-63 characters of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit"
LABEL_KEY_PATTERN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")
LABEL_KEY_RULE = (
    "1-63 characters of A-Z, a-z, 0-9, '.', '_', '/', '-', starting and ending with a letter "
    "or digit"
)
PRINTABLE_PATTERN = re.compile(r"[^\x00-\x1f\x7f]*")
"""Text of a report (label values, host, sdk, errors): no control characters."""
MAX_LABELS = 32
MAX_LABEL_VALUE_LENGTH = 128
MAX_REPORT_TEXT_LENGTH = 255
"""Of `host` and `sdk`."""
MAX_REPORT_ERROR_LENGTH = 1000
"""Of a rejection's `error`; the SDK shortens longer ones."""
MAX_REPORT_DOCUMENTS = 1000
"""Entries of `documents`, and of `rejected`, in one report; the SDK reports the first ones
(by key) of a client that holds more."""
MAX_REPORT_NAMESPACES = 64
MAX_REPORT_BYTES = 256 * 1024
"""A report's body (413 past it)."""
MAX_FLEET_INSTANCES = 50_000
"""SDK instances the fleet holds (every service instance keeps it in memory, ~5 KiB each);
a report of one more is refused with 503."""
MIN_REPORT_INTERVAL = 0.5
MAX_REPORT_INTERVAL = 3600.0
DEFAULT_REPORT_INTERVAL = 30.0
MISSED_REPORTS = 3
"""An instance that has not reported for this many of its intervals has left the fleet."""
VOUCHED_REPORTS_EVERY = 10
"""While an instance's watch stream stands for its periodic report, it still sends an
unchanged report every this many intervals; a stream stands for it only while such a report
came within one interval more (so a frozen process with an open stream leaves too)."""
REPORT_MODES = ("streaming", "polling", "cached", "connecting")
"""What a reporting SDK instance may say it is doing (the SDK's `Mode`, less `stopped`)."""


def is_valid_instance_id(value: str) -> bool:
    return INSTANCE_ID_PATTERN.fullmatch(value) is not None


def label_problems(labels: Mapping[str, Any]) -> list[str]:
    """What is wrong with `labels` (empty when they are fine): count, keys and values."""
    problems: list[str] = []
    if len(labels) > MAX_LABELS:
        problems.append(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not isinstance(key, str) or LABEL_KEY_PATTERN.fullmatch(key) is None:
            problems.append(f"label {str(key)[:64]!r}: keys are {LABEL_KEY_RULE}")
        elif not isinstance(value, str):
            problems.append(f"label {key!r}: values are strings")
        elif len(value) > MAX_LABEL_VALUE_LENGTH or not PRINTABLE_PATTERN.fullmatch(value):
            problems.append(
                f"label {key!r}: values are at most {MAX_LABEL_VALUE_LENGTH} characters, "
                "with no control characters"
            )
    return problems


def labels_header(labels: Mapping[str, str]) -> str:
    """The value of `X-Configsvc-Labels`: compact JSON, ASCII only (safe in a header)."""
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True, ensure_ascii=True)


INSTANCE_SUFFIX_BYTES = 4
"""Random bytes (8 hex digits) at the end of a default instance id."""
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def make_instance_id(host: str, pid: int, suffix: str) -> str:
    """`<host>-<pid>-<suffix>`, the default id of an SDK (or service) instance: the host name
    with other characters than letters, digits, '.' and '-' replaced, shortened to fit."""
    tail = f"-{pid}-{suffix}"
    safe = _HOST_UNSAFE.sub("-", host)[: MAX_INSTANCE_ID_LENGTH - len(tail)].strip(".-")
    return (safe or "host") + tail
