"""Bad request bodies: oversized, deeply nested, out-of-range numbers, not UTF-8, wrong
content types. Each is a clear 4xx in the contract's shape and stores nothing."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator

from badinput.badtools import MARKER, MAX_BODY, rate_body, request_bytes
from badinput.conftest import Refusals

from configsvc.api.http import MAX_JSON_DEPTH

DOC = "/v1/configs/prod/limits"
NEW_DOC = "/v1/configs/prod/new-doc"
JSON = {"Content-Type": "application/json"}

BODY_ROUTES = (
    ("PUT", DOC),
    ("PUT", NEW_DOC),
    ("POST", f"{DOC}/rollback"),
    ("POST", "/v1/tokens"),
)


def fill(template: str, *values: str) -> str:
    """`template` with each `@` replaced by the next of `values` (the last one repeats)."""
    parts = template.split("@")
    out = parts[0]
    for index, part in enumerate(parts[1:]):
        out += values[min(index, len(values) - 1)] + part
    return out


def padded(size: int) -> bytes:
    """A valid RateLimits body of exactly `size` bytes (the padding is JSON whitespace)."""
    raw = rate_body()
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


# ---- size -------------------------------------------------------------------------------


def test_oversized_bodies_are_413(refusals: Refusals) -> None:
    big = padded(MAX_BODY + 1)
    for method, path in BODY_ROUTES:
        response = refusals.api.request(method, path, content=big, headers=JSON)
        assert refusals.refused(response, 413, (method, path)) == "payload_too_large"

        def chunks(data: bytes = big) -> Iterator[bytes]:
            for start in range(0, len(data), 64 * 1024):
                yield data[start : start + 64 * 1024]

        response = refusals.api.request(method, path, content=chunks(), headers=JSON)
        assert "content-length" not in response.request.headers  # sent chunked
        assert refusals.refused(response, 413, (method, path, "chunked")) == "payload_too_large"
    refusals.unchanged()


def test_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    refusals: Refusals,
) -> None:
    """A client announcing 1 GB gets its 413 at once, without sending a byte of it."""
    for declared in (MAX_BODY + 1, 10**9, 10**15):
        data = request_bytes(
            "PUT", DOC, token=refusals.service.admin_token, headers={**JSON}, body=None
        )
        data = data.replace(b"\r\n\r\n", f"\r\nContent-Length: {declared}\r\n\r\n".encode(), 1)
        started = time.monotonic()
        response = refusals.raw(data, timeout=5)
        assert time.monotonic() - started < 3
        assert refusals.refused(response, 413, declared) == "payload_too_large"
    refusals.unchanged()


def test_a_body_of_exactly_the_limit_is_accepted(refusals: Refusals) -> None:
    response = refusals.api.put(NEW_DOC, content=padded(MAX_BODY), headers=JSON)
    assert response.status_code == 201, response.text


def test_a_content_length_shorter_than_the_body_reads_only_that_much(refusals: Refusals) -> None:
    """The rest is not taken as a second request body: the truncated JSON is a 400."""
    body = rate_body()
    data = request_bytes("PUT", NEW_DOC, token=refusals.service.admin_token, headers=JSON)
    data = data.replace(b"\r\n\r\n", b"\r\nContent-Length: 10\r\n\r\n", 1) + body
    response = refusals.raw(data)
    assert refusals.refused(response, 400) == "bad_request"
    refusals.unchanged()


# ---- nesting ----------------------------------------------------------------------------


def nested(depth: int, kind: str = "array") -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def test_deep_nesting_is_400_not_a_recursion_error(refusals: Refusals) -> None:
    """10,000 nested arrays or objects fit easily in 512 KiB; Python's JSON parser gives up
    around 1,000 with a RecursionError, which used to be a 500."""
    for depth in (MAX_JSON_DEPTH + 1, 1_000, 10_000, 100_000):
        for shape in ("array", "object"):
            deep = nested(depth, shape)
            bodies = {
                "spec": fill('{"kind": "RateLimits", "spec": {"limits": {"chat": @}}}', deep),
                "api_key": fill(
                    '{"kind": "ModelEndpoints", "spec": {"default": "a", "endpoints":'
                    ' {"a": {"base_url": "http://x", "model": "m", "api_key": @}}}}',
                    deep,
                ),
                "message": fill('{"kind": "RateLimits", "spec": {}, "message": @}', deep),
                "top": deep,
            }
            for what, body in bodies.items():
                if len(body) > MAX_BODY:
                    continue
                for method, path in BODY_ROUTES:
                    response = refusals.api.request(method, path, content=body, headers=JSON)
                    code = refusals.refused(response, 400, (depth, shape, what, method, path))
                    assert code == "bad_request"
                    assert "levels deep" in response.json()["error"]["message"]
    refusals.unchanged()


def test_nesting_within_the_limit_reaches_validation(refusals: Refusals) -> None:
    deep = nested(MAX_JSON_DEPTH - 4)
    body = fill('{"kind": "RateLimits", "spec": {"limits": {"chat": @}}}', deep)
    response = refusals.api.put(DOC, content=body, headers=JSON)
    assert refusals.refused(response, 422) == "validation_failed"


# ---- numbers ----------------------------------------------------------------------------


def test_numbers_json_cannot_round_trip_are_400(refusals: Refusals) -> None:
    """`1e400` parses as infinity: it used to be stored, and then every read of the
    namespace (listing, snapshot) answered 500. Integers past 4,300 digits raised a
    ValueError (500)."""
    template = '{"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": @}}}}'
    for number in ("1e400", "-1e400", "1E+999", "2e308", "NaN", "Infinity", "-Infinity"):
        for path in (DOC, NEW_DOC):
            response = refusals.api.put(path, content=fill(template, number), headers=JSON)
            assert refusals.refused(response, 400, (number, path)) == "bad_request"
    long_int = "9" * 5_000
    for body in (
        fill(template, long_int),
        fill('{"kind": "RateLimits", "version": @, "spec": {}}', long_int),
        fill('{"to_version": @}', long_int),
    ):
        for method, path in BODY_ROUTES:
            response = refusals.api.request(method, path, content=body, headers=JSON)
            assert refusals.refused(response, 400, (method, path)) == "bad_request"
    refusals.unchanged()
    listing = refusals.api.get("/v1/configs/prod")
    assert listing.status_code == 200, listing.text


def test_large_but_finite_numbers_are_fine(refusals: Refusals) -> None:
    template = '{"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": @}}}}'
    response = refusals.api.put(NEW_DOC, content=fill(template, "1.7e308"), headers=JSON)
    assert response.status_code == 201, response.text
    assert refusals.api.get("/v1/configs/prod").status_code == 200


# ---- encodings --------------------------------------------------------------------------


def test_bodies_that_are_not_utf8_are_400(refusals: Refusals) -> None:
    good = rate_body().decode()
    bodies = {
        "latin-1 byte": good.replace("chat", "ch\xe9t").encode("latin-1"),
        "0xff": good.encode().replace(b"chat", b"ch\xffat"),
        "overlong /": good.encode().replace(b"chat", b"ch\xc0\xafat"),
        "encoded surrogate": good.encode().replace(b"chat", b"ch\xed\xa0\x80at"),
        "truncated sequence": good.encode().replace(b"chat", b"ch\xe2\x82at"),
        "utf-16 with BOM": good.encode("utf-16"),
        "utf-16-le": good.encode("utf-16-le"),
        "utf-32": good.encode("utf-32"),
    }
    for what, body in bodies.items():
        for method, path in BODY_ROUTES:
            response = refusals.api.request(method, path, content=body, headers=JSON)
            assert refusals.refused(response, 400, (what, method, path)) == "bad_request"
    refusals.unchanged()


def test_lone_surrogate_escapes_are_400(refusals: Refusals) -> None:
    r"""`"\ud800"` is valid JSON syntax but no Unicode text: it cannot be stored as UTF-8
    nor answered. Some used to answer 500 (in a limit name, in an endpoint name, in a body
    namespace that the error message echoed)."""
    bodies = [
        '{"kind": "RateLimits", "spec": {"limits": {"ch\\ud800at": {"requests_per_second": 1}}}}',
        '{"kind": "RateLimits", "spec": {"limits": {"\\udfff": {"requests_per_second": 1}}}}',
        '{"kind": "Rate\\ud800", "spec": {}}',
        '{"namespace": "p\\ud800", "kind": "RateLimits", "spec": {}}',
        '{"kind": "RateLimits", "spec": {}, "message": "a\\udc00b"}',
        '{"kind": "ModelEndpoints", "spec": {"default": "a\\ud800", "endpoints": {"a\\ud800":'
        ' {"base_url": "http://x", "model": "m"}}}}',
        '{"to_version": 1, "message": "\\ud800"}',
        '{"name": "a\\ud800", "role": "reader", "namespaces": ["*"]}',
        '{"name": "ab", "role": "reader", "namespaces": ["\\udbff"]}',
    ]
    for body in bodies:
        for method, path in BODY_ROUTES:
            response = refusals.api.request(method, path, content=body, headers=JSON)
            assert refusals.refused(response, 400, (body, method, path)) == "bad_request"
    refusals.unchanged()


def test_valid_non_ascii_text_is_kept(refusals: Refusals) -> None:
    """A proper surrogate pair, raw UTF-8 and a UTF-8 byte order mark are all fine."""
    body = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 1}}}}
    body["message"] = "emoji \U0001f600 and \u00e9"
    escaped = json.dumps(body).encode()
    for content in (
        escaped,
        json.dumps(body, ensure_ascii=False).encode(),
        b"\xef\xbb\xbf" + escaped,
    ):
        response = refusals.api.put(NEW_DOC, content=content, headers=JSON)
        assert response.status_code in (200, 201), response.text
        assert refusals.api.get(NEW_DOC).json()["message"] == body["message"]


# ---- content types ----------------------------------------------------------------------


def test_wrong_content_types_are_400(refusals: Refusals) -> None:
    good = rate_body()
    for content_type in (
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/octet-stream",
        "application/yaml",
        "json",
        ";;;",
        "application/jsonx",
    ):
        for method, path in BODY_ROUTES:
            headers = {"Content-Type": content_type}
            response = refusals.api.request(method, path, content=good, headers=headers)
            code = refusals.refused(response, 400, (content_type, method, path))
            assert code == "bad_request"
            assert "content type" in response.json()["error"]["message"]
    refusals.unchanged()


def test_compressed_bodies_are_400(refusals: Refusals) -> None:
    """The service reads bodies as they are; a Content-Encoding is refused, not ignored."""
    good = rate_body()
    for encoding, body in (("gzip", gzip.compress(good)), ("gzip", good), ("br", good)):
        for method, path in BODY_ROUTES:
            headers = {**JSON, "Content-Encoding": encoding}
            response = refusals.api.request(method, path, content=body, headers=headers)
            assert refusals.refused(response, 400, (encoding, method, path)) == "bad_request"
    refusals.unchanged()


def test_json_content_types_are_accepted(refusals: Refusals) -> None:
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.configsvc+json",
    ):
        response = refusals.api.put(
            NEW_DOC, content=rate_body(rps=3), headers={"Content-Type": content_type}
        )
        assert response.status_code in (200, 201), (content_type, response.text)


def test_errors_about_a_body_never_echo_its_secret(refusals: Refusals) -> None:
    """Refusals of bodies that carry a secret say what is wrong, never the value."""
    endpoint = '{"kind": "ModelEndpoints", "spec": {"default": "a", "endpoints": {"a": @}}}'
    bodies = [
        fill(endpoint, fill('{"base_url": "ftp://x", "model": "m", "api_key": "@"}', MARKER)),
        fill(endpoint, fill('{"base_url": "http://x", "model": "m", "api_key": ["@"]}', MARKER)),
        fill(
            endpoint,
            fill('{"base_url": "http://x", "model": "m", "api_key": "@", "x": "@"}', MARKER),
        ),
        fill(endpoint, fill('{"base_url": "http://x", "model": "m", "api_key": "@", ', MARKER)),
        fill('{"kind": "ModelEndpoints", "spec": {"x": "@", "y": 1e400}}', MARKER),
        fill('{"kind": "ModelEndpoints", "spec": {"x": "@\\ud800"}}', MARKER),
        fill('{"kind": "ModelEndpoints", "spec": {"x": "@", "y": @}}', MARKER, nested(100)),
        fill('{"to_version": "@"}', MARKER),
        fill('{"name": "x", "role": "reader", "namespaces": ["@"]}', MARKER),
    ]
    for body in bodies:
        for method, path in BODY_ROUTES:
            response = refusals.api.request(method, path, content=body, headers=JSON)
            refusals.refused(response, None, (body[:60], method, path))
            assert MARKER not in response.text, body
    refusals.unchanged()
