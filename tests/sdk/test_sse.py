"""The SSE parser: bytes in, events out, whatever the chunking."""

from __future__ import annotations

import pytest
from configsvc_schemas.sse import SSEError, SSEEvent, SSEParser

STREAM = (
    b": keep-alive\n\n"
    b'id: 7\nevent: snapshot\ndata: {"revision": 7}\n\n'
    b"id: 8\r\nevent: put\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"id: 9\revent: delete\rdata:no-space\r\r"
    b"data: plain message\n\n"
)
EXPECTED = [
    SSEEvent("snapshot", '{"revision": 7}', "7"),
    SSEEvent("put", "line one\nline two", "8"),
    SSEEvent("delete", "no-space", "9"),
    SSEEvent("message", "plain message", "9"),
]


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[SSEEvent]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_whole_stream() -> None:
    assert feed_all(SSEParser(), [STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert feed_all(SSEParser(), chunks) == EXPECTED


def test_cr_at_chunk_end_then_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r\n") == [SSEEvent("message", "a")]


def test_utf8_split_across_chunks() -> None:
    raw = "data: café ☕\n\n".encode()
    parser = SSEParser()
    events = feed_all(parser, [raw[:9], raw[9:12], raw[12:]])
    assert events == [SSEEvent("message", "café ☕")]


def test_bom_is_dropped_only_at_start() -> None:
    parser = SSEParser()
    assert feed_all(parser, [b"\xef\xbb", b"\xbfdata: x\n\n"]) == [SSEEvent("message", "x")]


def test_comments_and_unknown_fields_are_ignored_and_empty_events_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b": hi\nfoo: bar\nevent: put\n\n") == []
    # the event type does not leak into the next event
    assert parser.feed(b"data: d\n\n") == [SSEEvent("message", "d")]


def test_id_persists_and_retry_needs_digits() -> None:
    parser = SSEParser()
    parser.feed(b"id: 41\nretry: 1500\n\n")
    assert parser.last_event_id == "41"
    assert parser.retry == 1500
    parser.feed(b"retry: 1.5\nid: a\x00b\n\n")
    assert parser.retry == 1500
    assert parser.last_event_id == "41"
    assert parser.feed(b"data: x\n\n") == [SSEEvent("message", "x", "41")]


def test_field_without_colon_and_empty_data() -> None:
    parser = SSEParser()
    assert parser.feed(b"data\n\n") == [SSEEvent("message", "")]


def test_unfinished_line_over_the_limit_is_an_error() -> None:
    parser = SSEParser(max_buffer=16)
    parser.feed(b"data: 0123456789")
    with pytest.raises(SSEError):
        parser.feed(b"abcdefgh")
