"""FleetView, pure logic: ordering by revision, last-heard times, silence, loading."""

from __future__ import annotations

from typing import Any

from configsvc_schemas.wire import VOUCHED_REPORTS_EVERY

from configsvc.fleet.view import FleetView, epoch_ms
from configsvc.store.fleet import FleetRecord, FleetSnapshot, Heard
from configsvc.store.watcher import FamilyChange
from tests.fleet.helpers import report

T0 = "2026-11-22T01:00:00.000Z"
T0_MS = epoch_ms(T0)
INTERVAL_MS = 1000
GRACE_MS = 500


def record(instance: str, revision: int, *, at: str = T0, **changes: Any) -> FleetRecord:
    content = {k: v for k, v in report(instance, interval=1.0).items() if k != "instance"}
    content.update(changes)
    return FleetRecord(instance, "svc-token", content, at, revision)


def view(jitter_ms: int = 0) -> FleetView:
    fleet = FleetView("svc-a", jitter_ms=jitter_ms, grace_ms=GRACE_MS)
    fleet.begin_load()
    fleet.finish_load(FleetSnapshot(1, [], []), now_ms=0)
    return fleet


def change(key: str, value: bytes | None, revision: int) -> FamilyChange:
    return FamilyChange("flt", key, value, revision)


def test_a_record_is_never_replaced_by_an_older_one_nor_removed_by_an_older_delete() -> None:
    fleet = view()
    assert fleet.put(record("a", 10, mode="polling")) is not None
    assert fleet.put(record("a", 9, mode="cached")) is None
    member = fleet.get("a")
    assert member is not None and member.record.content["mode"] == "polling"
    fleet.remove("a", 8)
    assert fleet.get("a") is not None
    fleet.remove("a", 11)
    assert fleet.get("a") is None


def test_silence_counts_from_the_last_report_heard_anywhere() -> None:
    fleet = view()
    fleet.put(record("a", 2))
    silent_at = T0_MS + 3 * INTERVAL_MS + GRACE_MS
    assert fleet.due(silent_at) == []
    assert [m.instance for m in fleet.due(silent_at + 1)] == ["a"]
    # another service instance heard of it later: the deadline moves with it
    fleet.hear(Heard("svc-b", T0_MS + 2000, {"a": T0_MS + 1500, "unknown": T0_MS}))
    assert fleet.due(silent_at + 1) == []
    assert [m.instance for m in fleet.due(silent_at + 1501)] == ["a"]
    # a report heard here counts the same; an older one changes nothing
    fleet.note_seen("a", T0_MS + 3000)
    fleet.note_seen("a", T0_MS + 100)
    member = fleet.get("a")
    assert member is not None and member.seen_ms == T0_MS + 3000


def test_a_fresh_view_judges_nobody_on_what_it_may_have_missed() -> None:
    """Loaded long after a record was written, the view has heard nothing yet: the silence
    counts from the load, not from the record's time."""
    fleet = FleetView("svc-a", jitter_ms=0, grace_ms=GRACE_MS)
    fleet.begin_load()
    loaded_at = T0_MS + 60_000
    fleet.finish_load(FleetSnapshot(5, [record("a", 3)], []), now_ms=loaded_at)
    assert fleet.due(loaded_at + 3 * INTERVAL_MS + GRACE_MS) == []
    assert len(fleet.due(loaded_at + 3 * INTERVAL_MS + GRACE_MS + 1)) == 1


def test_jitter_spreads_deadlines_per_service_instance_and_stays_below_its_bound() -> None:
    a = FleetView("svc-a", jitter_ms=300, grace_ms=0)
    b = FleetView("svc-b", jitter_ms=300, grace_ms=0)
    jitters_a, jitters_b = [], []
    for n in range(50):
        for fleet, found in ((a, jitters_a), (b, jitters_b)):
            member = fleet.put(record(f"i{n}", 1))
            assert member is not None and 0 <= member.jitter_ms < 300
            found.append(member.jitter_ms)
    assert jitters_a != jitters_b
    assert len(set(jitters_a)) > 10


def test_changes_during_a_load_wait_and_only_newer_ones_apply() -> None:
    fleet = FleetView("svc-a", jitter_ms=0, grace_ms=0)
    fleet.begin_load()
    fleet.apply(change("i/a", record("a", 4, mode="polling").stored_value(), 4))
    fleet.apply(change("i/b", record("b", 7).stored_value(), 7))
    fleet.apply(change("i/c", None, 8))
    assert fleet.members == {} and not fleet.loaded
    snapshot = FleetSnapshot(6, [record("a", 5, mode="cached"), record("c", 3)], [])
    fleet.finish_load(snapshot, now_ms=T0_MS)
    a = fleet.get("a")
    assert a is not None and a.record.content["mode"] == "cached"  # 4 is older than the load
    assert fleet.get("b") is not None  # 7 is newer
    assert fleet.get("c") is None  # deleted at 8
    # live changes apply at once; other families' keys and unknown parts are ignored
    fleet.apply(change("s/svc-b", Heard("svc-b", T0_MS + 9, {"b": T0_MS + 9}).stored_value(), 9))
    b = fleet.get("b")
    assert b is not None and b.seen_ms == T0_MS + 9
    fleet.apply(change("x/whatever", b"{}", 10))
    fleet.apply(change("s/svc-b", None, 11))
    assert fleet.heard == {}


def test_confirmations_last_while_the_record_and_the_token_stay_the_same() -> None:
    fleet = view()
    member = fleet.put(record("a", 2))
    assert member is not None
    digest = b"d" * 16
    fleet.confirm("a", member.content_bytes, "other-token", digest)
    assert fleet.confirmed_member(digest) is None  # another token's report: not confirmed
    fleet.confirm("a", member.content_bytes, "svc-token", digest)
    assert fleet.confirmed_member(digest) is member
    # the same content again (the watch's echo of a write): still confirmed
    fleet.put(record("a", 3))
    assert fleet.confirmed_member(digest) is not None
    # changed content: no longer
    fleet.put(record("a", 4, mode="polling"))
    assert fleet.confirmed_member(digest) is None
    assert fleet.confirmed == {}
    member = fleet.get("a")
    assert member is not None
    fleet.confirm("a", member.content_bytes, "svc-token", digest)
    fleet.forget_confirmations()
    assert fleet.confirmed_member(digest) is None
    fleet.confirm("a", member.content_bytes, "svc-token", digest)
    fleet.remove("a", 5)
    assert fleet.confirmed == {}


def test_stale_hearings_are_other_instances_quiet_for_too_long() -> None:
    fleet = view()
    fleet.hear(Heard("svc-a", T0_MS, {}, 2))
    fleet.hear(Heard("svc-b", T0_MS, {}, 3))
    fleet.hear(Heard("svc-c", T0_MS + 50_000, {}, 4))
    stale = fleet.stale_heard(T0_MS + 60_001, 60_000)
    assert [(h.service, h.revision) for h in stale] == [("svc-b", 3)]  # never its own


def test_queries_by_namespace_and_document() -> None:
    fleet = view()
    fleet.put(record("b", 1))
    fleet.put(record("a", 2, rejected={"prod/keys": {"version": 2, "revision": 9, "error": "x"}}))
    fleet.put(record("c", 3, namespaces=["staging"], documents={}))
    assert [m.instance for m in fleet.in_namespace("prod")] == ["a", "b"]
    assert [m.instance for m in fleet.reporting("prod/keys")] == ["a"]
    assert [m.instance for m in fleet.reporting("prod/limits")] == ["a", "b"]
    assert fleet.reporting("staging/limits") == []


def test_sweeps_look_at_nothing_before_the_earliest_deadline() -> None:
    fleet = view()
    fleet.put(record("slow", 2, report_interval=60.0))
    assert fleet.due(T0_MS) == []
    assert fleet.next_due_ms == T0_MS + 3 * 60_000 + GRACE_MS
    fleet.put(record("fast", 3))  # a shorter interval: an earlier deadline
    assert fleet.next_due_ms == T0_MS + 3 * INTERVAL_MS + GRACE_MS
    late = T0_MS + 3 * INTERVAL_MS + GRACE_MS + 1
    assert [m.instance for m in fleet.due(late)] == ["fast"]
    assert [m.instance for m in fleet.due(late + 1)] == ["fast"]  # until it goes
    fleet.remove("fast", 4)
    assert fleet.due(late + 2) == []
    assert fleet.next_due_ms == T0_MS + 3 * 60_000 + GRACE_MS


def test_a_stream_stands_for_reports_only_while_reports_of_its_own_keep_coming() -> None:
    fleet = view()
    fleet.put(record("a", 2))
    member = fleet.get("a")
    assert member is not None
    limit_ms = (VOUCHED_REPORTS_EVERY + 1) * INTERVAL_MS + GRACE_MS
    assert fleet.vouches(member, T0_MS + limit_ms)
    # heard through its stream (here and on another service instance): alive, but it does
    # not move the time of its last own report
    fleet.note_seen("a", T0_MS + limit_ms, streamed=True)
    fleet.hear(Heard("svc-b", T0_MS + limit_ms, {"a": T0_MS + limit_ms}, 5, frozenset({"a"})))
    assert member.seen_ms == T0_MS + limit_ms and member.report_heard_ms == T0_MS
    assert fleet.due(T0_MS + limit_ms + 3 * INTERVAL_MS) == []
    assert not fleet.vouches(member, T0_MS + limit_ms + 1)
    # a report of its own heard elsewhere renews it
    fleet.hear(Heard("svc-b", T0_MS + 9000, {"a": T0_MS + 9000}, 6))
    assert fleet.vouches(member, T0_MS + 9000 + limit_ms)
    assert not fleet.vouches(member, T0_MS + 9000 + limit_ms + 1)


def test_heard_values_say_which_instances_were_heard_through_their_streams() -> None:
    heard = Heard("svc-b", T0_MS, {"a": T0_MS - 5, "b": T0_MS}, 0, frozenset({"b"}))
    back = Heard.from_stored(heard.stored_value(), 7)
    assert back.seen == heard.seen and back.streamed == {"b"} and back.revision == 7
    # a value written without the field (an older service instance): all were reports
    plain = Heard.from_stored(Heard("svc-c", T0_MS, {"a": T0_MS}).stored_value(), 8)
    assert plain.streamed == frozenset() and b"streamed" not in Heard("c", 0).stored_value()
