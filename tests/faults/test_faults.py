"""Faults on a 3-member etcd cluster and two service instances, each in its own test.

Every run: a CAS writer (20 writes/s, instances in turn), full SDK clients and lean streams
on both instances; one fault; then the checker (`Scenario.finish`): nothing acknowledged
lost or doubled, every client ordered, without duplicates, and on the final state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults._scenario import Scenario
from tests.faults._streams import QUICK_BACKOFF, StreamFleet
from tests.faults._writer import CasWriter
from tests.sdk.helpers import ChaosProxy, wait_until

pytestmark = pytest.mark.timeout(240)

BASELINE_ACKS = 20
"""Acknowledged writes before a fault (the run is up and steady)."""
ACKS_AFTER = 20
"""Acknowledged writes after each step of a fault, before the next one."""
STREAMS_PER_INSTANCE = 10


def start_steady(scenario: Scenario) -> tuple[CasWriter, StreamFleet]:
    """The writer, SDK clients and streams of a run on both instances, writes steady."""
    writer = scenario.start_writer()
    scenario.add_sdk_clients()
    fleet = scenario.add_streams(STREAMS_PER_INSTANCE)
    writer.wait_acks(BASELINE_ACKS, after=time.monotonic())
    return writer, fleet


def test_etcd_leader_killed_and_restarted(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    cluster = scenario.cluster
    first = cluster.members[0]
    cluster.make_leader(first)  # the member the services' gRPC channel uses, and the leader
    writer, _fleet = start_steady(scenario)

    old_leader = cluster.member_id(first)
    killed_at = cluster.kill(first)
    election = cluster.wait_new_leader(old_leader, killed_at, cluster.members[1:])
    writer.wait_acks(ACKS_AFTER, after=killed_at)
    cluster.restart(first)
    restarted_at = time.monotonic()
    writer.wait_acks(ACKS_AFTER, after=restarted_at)

    figures = scenario.finish()
    unavailable = writer.log.gap_around(killed_at)
    report(
        {
            "etcd_election_s": round(election.seconds, 3),
            "write_unavailable_s": round(unavailable, 3),
            **figures,
        }
    )


FREEZE_SECONDS = 10.0
"""How long the frozen member stays stopped (the fault's duration, not a wait)."""


def test_etcd_leader_frozen_for_ten_seconds(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    cluster = scenario.cluster
    first = cluster.members[0]
    cluster.make_leader(first)  # frozen: the services' member and the leader at once
    writer, _fleet = start_steady(scenario)

    old_leader = cluster.member_id(first)
    frozen_at = cluster.freeze(first)
    try:
        election = cluster.wait_new_leader(old_leader, frozen_at, cluster.members[1:])
        writer.wait_acks(ACKS_AFTER, after=frozen_at)
        recovered = writer.log.gap_around(frozen_at)
        time.sleep(max(0.0, frozen_at + FREEZE_SECONDS - time.monotonic()))
    finally:
        cluster.thaw(first)
    thawed_at = time.monotonic()
    cluster.wait_healthy()
    writer.wait_acks(ACKS_AFTER, after=thawed_at)

    figures = scenario.finish()
    report(
        {
            "etcd_election_s": round(election.seconds, 3),
            "write_unavailable_s": round(recovered, 3),
            **figures,
        }
    )


def test_service_instance_killed_and_restarted(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    writer, fleet = start_steady(scenario)

    victim = scenario.services[0]
    killed_at = victim.kill()
    writer.wait_acks(ACKS_AFTER, after=killed_at)  # the other instance takes the writes
    # even streams start on the killed instance: each must stream again (from the other)
    moved = fleet.wait(lambda r: r.index % 2 or r.established[-1] > killed_at, 30)[::2]
    failed_over = max(min(t for t in r.established if t > killed_at) for r in moved) - killed_at
    victim.start()
    restarted_at = time.monotonic()
    writer.wait_acks(ACKS_AFTER, after=restarted_at)

    figures = scenario.finish()
    report(
        {
            "write_unavailable_s": round(writer.log.gap_around(killed_at), 3),
            "streams_failed_over_s": round(failed_over, 3),
            **figures,
        }
    )


CUTS = 5


def test_streams_cut_through_a_proxy(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    writer = scenario.start_writer()
    proxy = ChaosProxy(scenario.services[0].port)
    try:
        sdk = scenario.add_sdk_clients(3, urls=[proxy.url], label="proxied")
        fleet = scenario.add_streams(STREAMS_PER_INSTANCE, urls=[proxy.url], **QUICK_BACKOFF)
        scenario.add_sdk_clients(1)  # and one per instance, not proxied
        streams = len(sdk) + STREAMS_PER_INSTANCE
        writer.wait_acks(BASELINE_ACKS, after=time.monotonic())
        reconnects = []
        for _ in range(CUTS):
            requests = proxy.watch_requests
            cut_at = time.monotonic()
            proxy.cut()
            wanted = requests + streams
            wait_until(lambda n=wanted: proxy.watch_requests >= n, 30, "reconnects")
            fleet.wait(lambda r, t=cut_at: r.streaming and r.established[-1] > t, 30)
            wait_until(lambda: all(o.client.status.mode == "streaming" for o in sdk), 30, "sdk")
            reconnects.append(time.monotonic() - cut_at)
            writer.wait_acks(ACKS_AFTER // 2, after=time.monotonic())
        figures = scenario.finish()
        # Only the first request of each stream came without a resume point.
        assert proxy.resume_ids.count(None) == streams, proxy.resume_ids
    finally:
        proxy.close()
    report({"cuts": CUTS, "all_streaming_again_max_s": round(max(reconnects), 3), **figures})


def test_compaction_past_every_client_revision(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    """Clients away while etcd compacts past their revisions: they resume from the history
    records (no snapshot needed). Instance b is frozen meanwhile and its etcd member
    killed, so that on waking its store watch is behind the compaction and resynchronises."""
    cluster = scenario.cluster
    a, b = scenario.services
    cluster.make_leader(cluster.members[1])
    writer = scenario.start_writer()
    proxy = ChaosProxy(a.port)
    try:
        away = scenario.add_sdk_clients(2, urls=[proxy.url], label="away")
        scenario.add_sdk_clients(1)
        fleet = scenario.add_streams(STREAMS_PER_INSTANCE, **QUICK_BACKOFF)
        writer.wait_acks(BASELINE_ACKS, after=time.monotonic())

        proxy.refuse_watch = proxy.refuse_other = True
        proxy.cut()
        fleet.pause()
        wait_until(lambda: all(o.client.status.mode == "cached" for o in away), 30, "away")
        resume_points = [o.client.status.revision or 0 for o in away]
        resume_points += [r.last_id or 0 for r in fleet.records()]

        writer.use([0])
        b.freeze()
        cluster.kill(cluster.members[0])  # the member both instances' channels use
        writer.wait_acks(ACKS_AFTER, after=time.monotonic())
        compacted = cluster.revision()
        cluster.compact(compacted)
        assert compacted > max(resume_points)
        cluster.restart(cluster.members[0])
        b.thaw()
        writer.use([1])
        writer.wait_acks(ACKS_AFTER // 2, after=time.monotonic())
        wait_until(lambda: "behind compaction" in b.log_text(), 30, "b's store watch resync")
        a.kill()  # a restarted instance has no recent events in memory: replay from history
        a.start()
        writer.use([0, 1])
        writer.wait_acks(ACKS_AFTER, after=time.monotonic())

        proxy.refuse_watch = proxy.refuse_other = False
        resumed_at = time.monotonic()
        fleet.resume()
        figures = scenario.finish()
        figures["reconverged_s"] = round(time.monotonic() - resumed_at, 3)
    finally:
        proxy.close()
    report({"compacted_at": compacted, "oldest_resume_point": min(resume_points), **figures})


TIER_STREAMS_PER_INSTANCE = 250
TIER_BACKOFF = {"backoff_initial": 0.1, "backoff_cap": 2.0}
"""Full jitter with a 2 s cap keeps this test short; the SDK's 0.5-30 s schedule is
measured by the reconnect storm (test_storm.py, slow)."""


def test_whole_service_tier_restarted_under_500_streams(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    writer = scenario.start_writer(interval=0.1)
    scenario.add_sdk_clients()
    fleet = scenario.add_streams(TIER_STREAMS_PER_INSTANCE, **TIER_BACKOFF)
    writer.wait_acks(BASELINE_ACKS // 2, after=time.monotonic())

    stopped_at = time.monotonic()
    for instance in scenario.services:
        instance.terminate()
    for instance in scenario.services:
        instance.wait_exit()
    down_s = time.monotonic() - stopped_at
    for instance in scenario.services:
        instance.spawn()
    ready_at = max(instance.wait_ready() for instance in scenario.services)
    records = fleet.wait(lambda r: r.streaming and r.established[-1] > stopped_at, 120)
    all_back = max(r.established[-1] for r in records)
    writer.wait_acks(ACKS_AFTER, after=time.monotonic())

    figures = scenario.finish()
    report(
        {
            "streams": len(records),
            "backoff_s": f"{TIER_BACKOFF['backoff_initial']}-{TIER_BACKOFF['backoff_cap']}",
            "tier_stopped_s": round(down_s, 3),
            "tier_restart_to_ready_s": round(ready_at - stopped_at, 3),
            "all_streaming_after_ready_s": round(all_back - ready_at, 3),
            "non_200_answers": sum(r.refusals for r in records),
            "write_unavailable_s": round(writer.log.gap_around(stopped_at), 3),
            **figures,
        }
    )


QUORUM_LOSS_SECONDS = 3.0
"""How long a second member stays frozen while the first is down (no quorum)."""


@pytest.mark.slow  # 11 s; each of its faults also has its own test in the regular suite
def test_several_faults_together(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    cluster = scenario.cluster
    first, second, third = cluster.members
    a, b = scenario.services
    cluster.make_leader(first)
    writer = scenario.start_writer()
    proxy = ChaosProxy(a.port)
    try:
        scenario.add_sdk_clients(2, urls=[proxy.url, b.url], label="proxied")
        scenario.add_sdk_clients(1)
        scenario.add_streams(STREAMS_PER_INSTANCE, **QUICK_BACKOFF)
        writer.wait_acks(BASELINE_ACKS, after=time.monotonic())

        # At once: the etcd leader and instance a die, the proxied streams are cut.
        old_leader = cluster.member_id(first)
        killed_at = cluster.kill(first)
        a.kill()
        proxy.cut()
        election = cluster.wait_new_leader(old_leader, killed_at, [second, third])
        writer.wait_acks(ACKS_AFTER, after=killed_at)

        # No quorum for a while: a second member frozen while the first is still down.
        frozen_at = cluster.freeze(second)
        try:
            time.sleep(QUORUM_LOSS_SECONDS)
        finally:
            cluster.thaw(second)
        writer.wait_acks(ACKS_AFTER, after=time.monotonic())

        # The dead come back, etcd compacts past every client, the proxy cuts again.
        cluster.restart(first)
        a.start()
        cluster.compact(cluster.revision())
        proxy.cut()
        writer.wait_acks(ACKS_AFTER, after=time.monotonic())
        figures = scenario.finish()
    finally:
        proxy.close()
    report(
        {
            "etcd_election_s": round(election.seconds, 3),
            "write_unavailable_leader_kill_s": round(writer.log.gap_around(killed_at), 3),
            "write_unavailable_quorum_loss_s": round(writer.log.gap_around(frozen_at), 3),
            **figures,
        }
    )


def test_store_watch_behind_compaction_while_etcd_has_no_quorum(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    """Instance b wakes to a store watch behind etcd's compaction at a moment etcd cannot
    answer a linearizable read (no quorum): its watch must keep retrying, and once the
    quorum is back its streams must deliver every change again."""
    cluster = scenario.cluster
    first, second, third = cluster.members
    _a, b = scenario.services
    cluster.make_leader(third)  # the compaction is applied where b's watch will land
    writer = scenario.start_writer()
    scenario.add_sdk_clients(1)
    scenario.add_streams(STREAMS_PER_INSTANCE, **QUICK_BACKOFF)
    writer.wait_acks(BASELINE_ACKS, after=time.monotonic())

    writer.use([0])
    b.freeze()
    writer.wait_acks(ACKS_AFTER, after=time.monotonic())
    cluster.compact(cluster.revision())
    lost_at = cluster.kill(first)  # b's channel member: its watch breaks when it wakes
    cluster.kill(second)  # and the quorum is gone
    b.thaw()
    wait_until(lambda: "behind compaction" in b.log_text(), 30, "b's store watch resync")
    resync_log = len(b.log_text())
    # b reads the store's revision to start over; it cannot, and must say it will retry
    wait_until(lambda: "resuming" in b.log_text()[resync_log:], 30, "b retries its watch")
    cluster.restart(first)
    cluster.restart(second)
    writer.use([0, 1])
    scenario.add_streams(STREAMS_PER_INSTANCE // 2, urls=[b.url])  # new streams stay on b
    writer.wait_acks(ACKS_AFTER, after=time.monotonic())
    figures = scenario.finish()
    report({"write_unavailable_quorum_loss_s": round(writer.log.gap_around(lost_at), 3), **figures})
