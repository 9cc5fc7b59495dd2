"""What to do next, appended to a failure's one line: every error says what happened (the
service's words, or the transport's) and then how to get on."""

from __future__ import annotations

import re
import ssl
from typing import TypeVar

import httpx
from configsvc_schemas.wire import ADMIN_TOKEN_FILE, CA_ENV, DATA_DIR_ENV, TOKEN_ENV, URL_ENV

from configsvc.cli._options import DEFAULT_SOURCE, TokenFile

GIVE_TOKEN = f"give one with --token or {TOKEN_ENV}"
GIVE_DATA_DIR = (
    f"the data dir of the service (whose {ADMIN_TOKEN_FILE} is used) with --data-dir or "
    f"{DATA_DIR_ENV}"
)

E = TypeVar("E", bound=BaseException)

_DOCUMENT_PATH = re.compile(r"^/v1/configs/(?P<ns>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
_DOCUMENT_IN_MESSAGE = re.compile(r"\bno (?:document|history for) (?P<ns>[a-z0-9][^/\s]*)/")


def url_origin(source: str) -> str:
    """Where the URL came from, for a message: ` (from --url)`, ` (the default URL)`."""
    if source == DEFAULT_SOURCE:
        return " (the default URL)"
    return f" (from {source})"


def unreachable_hint(exc: httpx.HTTPError, url_source: str) -> str:
    """What to do when a request got no answer."""
    tls_error = _cause(exc, ssl.SSLError)
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        return (
            "if its certificate is from a CA of your own, trust that CA with --ca FILE "
            f"(before the command's name) or {CA_ENV}"
        )
    if tls_error is not None:
        return "check that the service serves HTTPS there (a plain HTTP one needs http://)"
    if isinstance(exc, httpx.TimeoutException):
        return "check that the service and its etcd are up (GET /readyz), then try again"
    if url_source == DEFAULT_SOURCE:
        return f"start it with `configsvc serve`, or give its URL with --url or {URL_ENV}"
    return f"check that the service runs there and the URL is right (--url or {URL_ENV})"


def no_token_message(url: str, token_file: TokenFile | None) -> str:
    """Why no token was sent to `url`, and every way to give one."""
    looked = ""
    if token_file is not None:
        looked = f" and {token_file.path} {token_file.problem or 'holds none'}"
    return f"no token was sent to {url}: none was given{looked}; {GIVE_TOKEN}, or {GIVE_DATA_DIR}"


def rejected_token_hint(token_source: str, token_file: TokenFile | None) -> str:
    """What to do when the service refused the token that was sent."""
    if token_file is not None:
        return (
            f"is that data dir another service's? give this service's with --data-dir or "
            f"{DATA_DIR_ENV}, or a token with --token or {TOKEN_ENV}"
        )
    return (
        f"check the token given with {token_source} (mistyped, revoked, or another "
        "service's?), or ask an admin for one: configsvc tokens create"
    )


def hint_for_not_found(path: str, reason: str) -> str | None:
    """Which command lists what was not found at `path` (None when nothing fits)."""
    document = _DOCUMENT_PATH.match(path)
    if document is not None and (document["rest"] or "").startswith("/versions/"):
        return f"`configsvc history {document['ns']}/{document['name']}` lists its versions"
    named = _DOCUMENT_IN_MESSAGE.search(reason)
    if named is not None:
        return f"`configsvc list {named['ns']}` lists its documents"
    if path.startswith("/v1/schemas/"):
        return "`configsvc schemas` lists the kinds"
    if path.startswith("/v1/tokens/"):
        return "`configsvc tokens list` lists the tokens"
    return None


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of `kind` in the chain of `exc`, or None."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None
