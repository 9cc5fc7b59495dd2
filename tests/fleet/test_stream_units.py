"""StreamHeartbeats and Unpublished, pure logic: which streams are due, what one `Heard`
write holds."""

from __future__ import annotations

from configsvc.fleet.heard import Unpublished
from configsvc.fleet.streams import StreamHeartbeats
from configsvc.store.fleet import Heard, heard_entry_bytes


def test_only_due_streams_are_handed_out_and_closed_ones_never() -> None:
    streams = StreamHeartbeats()
    streams.opened("a", "tok", 0)
    streams.opened("b", "tok", 0)
    streams.opened("c", "other", 5)
    assert sorted(streams.due(0)) == [("a", "tok"), ("b", "tok")]
    assert streams.due(4) == []  # taken off the schedule until put back
    streams.later("a", "tok", 100)
    streams.later("a", "tok", 50)  # already scheduled: the first time stands
    streams.later("b", "tok", 30)
    streams.closed("b", "tok")
    assert streams.due(99) == [("c", "other")]
    assert streams.due(100) == [("a", "tok")]
    assert len(streams) == 2  # a and c


def test_two_streams_of_one_instance_count_once_and_it_stays_until_both_close() -> None:
    streams = StreamHeartbeats()
    streams.opened("a", "tok", 0)
    streams.opened("a", "tok", 1)  # a reconnect overlapping the old stream
    assert streams.due(1) == [("a", "tok")]
    streams.later("a", "tok", 10)
    streams.closed("a", "tok")
    assert streams.due(10) == [("a", "tok")]
    streams.later("a", "tok", 20)
    streams.closed("a", "tok")
    assert streams.due(20) == [] and len(streams) == 0
    streams.opened("a", "tok", 25)  # opened again: looked at once more
    assert streams.due(25) == [("a", "tok")]


def test_a_heard_write_is_bounded_in_bytes_and_a_report_prevails_over_a_stream() -> None:
    unpublished = Unpublished()
    unpublished.note("a", 1, streamed=True)
    unpublished.note("a", 2, streamed=False)  # a report of a in the same window
    unpublished.note("b", 3, streamed=False)
    unpublished.note("b", 4, streamed=True)  # b's report stays what counts
    unpublished.note("c", 5, streamed=True)
    budget = heard_entry_bytes("a", False) + heard_entry_bytes("b", False)
    seen, streamed = unpublished.take(budget)
    assert seen == {"a": 2, "b": 4} and streamed == frozenset()
    seen, streamed = unpublished.take(1)  # at least one, whatever the budget
    assert seen == {"c": 5} and streamed == {"c"}
    assert not unpublished
    # a failed write comes back, unless heard of again since
    unpublished.note("c", 9, streamed=False)
    unpublished.put_back(Heard("svc", 6, {"a": 2, "c": 5}, streamed=frozenset({"a", "c"})))
    assert unpublished.take(10_000) == ({"c": 9, "a": 2}, frozenset({"a"}))
    assert len(Heard("s", 0, {"x" * 53: 0}, streamed=frozenset({"x" * 53})).stored_value()) < (
        heard_entry_bytes("x" * 53, True) + 60
    )
