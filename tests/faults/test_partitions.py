"""Network partitions: packets dropped, processes alive (network namespaces, root only).

Every etcd member and service instance runs in a network namespace of its own, linked to a
private switch (`tests/faults/_netns.py`); the test (writer, SDK clients, lean streams) runs
in the root namespace. A partition sets a link's switch port down: nothing is refused or
reset, packets simply vanish, so only timeouts and keep-alives can tell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults._checker import read_store
from tests.faults._cluster import MEMBERS, ClusterMember, EtcdCluster
from tests.faults._netns import BACK, NetLab, why_unavailable
from tests.faults._scenario import DOCS, NAMESPACE, Scenario
from tests.faults._services import SERVICE_NAMES, ServiceInstance
from tests.faults._streams import QUICK_BACKOFF, StreamFleet
from tests.faults._writer import AMBIGUOUS, CasWriter
from tests.sdk.helpers import wait_until

pytestmark = pytest.mark.timeout(240)

BASELINE_ACKS = 20
ACKS_AFTER = 20
STREAMS_PER_INSTANCE = 10
PARTITION_SECONDS = 10.0
"""How long a link stays cut (the fault's duration, not a wait)."""
REJOIN_WITHIN = 30.0
"""Seconds a healed member may take to be back in agreement and caught up."""


@pytest.fixture
def lab() -> Iterator[NetLab]:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"network partitions: {reason}")
    network = NetLab.for_faults(MEMBERS, SERVICE_NAMES)
    yield network
    network.close()


def start_steady(scenario: Scenario) -> tuple[CasWriter, StreamFleet]:
    writer = scenario.start_writer()
    scenario.add_sdk_clients()
    fleet = scenario.add_streams(STREAMS_PER_INSTANCE, **QUICK_BACKOFF)
    writer.wait_acks(BASELINE_ACKS, after=time.monotonic())
    return writer, fleet


def wait_rejoined(cluster: EtcdCluster, member: ClusterMember, since: float) -> float:
    """Seconds from `since` until `member` follows the leader the others follow and has
    caught up with the revision the leader had when this was called."""
    leader = cluster.leader(REJOIN_WITHIN)
    target = cluster.revision()
    deadline = since + REJOIN_WITHIN
    while time.monotonic() < deadline:
        status = member.status(0.25)
        leader_status = leader.status(0.25)
        if (
            status is not None
            and leader_status is not None
            and status.leader == leader_status.leader
            and status.revision >= target
        ):
            return time.monotonic() - since
        time.sleep(0.01)
    raise AssertionError(f"{member.name} not back within {REJOIN_WITHIN} s: {cluster.statuses()}")


@pytest.mark.slow  # ~17 s each; the leader's loss is also covered by the kill and freeze runs
@pytest.mark.parametrize("role", ["leader", "follower"])
def test_etcd_member_partitioned_for_ten_seconds(
    scenario: Scenario,
    cluster: EtcdCluster,
    lab: NetLab,
    report: Callable[[dict[str, Any]], None],
    role: str,
) -> None:
    """The member both services' gRPC channels use (m0, first of their endpoints) is cut
    off from the other members, the services and the test, then the link heals."""
    victim, others = cluster.members[0], cluster.members[1:]
    cluster.make_leader(victim if role == "leader" else others[0])
    writer, _fleet = start_steady(scenario)

    old_leader_id = cluster.member_id(cluster.leader())
    term_before = max(s.raft_term for s in cluster.statuses().values())
    cut_at = lab.cut(lab.hosts[victim.name].links[BACK])
    try:
        election = (
            cluster.wait_new_leader(old_leader_id, cut_at, others) if role == "leader" else None
        )
        writer.wait_acks(ACKS_AFTER, after=cut_at, within=PARTITION_SECONDS + 20)
        time.sleep(max(0.0, cut_at + PARTITION_SECONDS - time.monotonic()))
    finally:
        healed_at = lab.heal(lab.hosts[victim.name].links[BACK])
    rejoined_s = wait_rejoined(cluster, victim, healed_at)
    writer.wait_acks(ACKS_AFTER, after=time.monotonic())
    leader_after = cluster.leader()
    term_after = max(s.raft_term for s in cluster.statuses().values())

    figures = scenario.finish()
    report(
        {
            "partitioned": f"{victim.name} ({role})",
            "etcd_election_s": round(election.seconds, 3) if election else None,
            "write_unavailable_s": round(writer.log.gap_around(cut_at), 3),
            "write_gap_at_heal_s": round(writer.log.gap_around(healed_at), 3),
            "rejoined_after_heal_s": round(rejoined_s, 3),
            "leader_after": leader_after.name,
            "raft_terms": term_after - term_before,
            **figures,
        }
    )


STALE_AFTER = 10.0
"""Seconds after the cut by which a client of the cut-off instance must no longer be silently
stale: the instance's gRPC keep-alive (5 s + 2 s) has noticed the dead channel by then."""
FRESH_WITHIN = 5.0
"""Seconds a client then has to hold the store's state (or to say it is not streaming)."""
SERVICE_PARTITION_SECONDS = STALE_AFTER + FRESH_WITHIN
"""How long instance a stays cut off: until its clients have been looked at."""
WATCH_INTERRUPTED = "store watch interrupted"
"""What an instance logs when its etcd watch breaks (`configsvc.store.watcher`)."""


class LeftStale(Exception):
    """Clients of a cut-off instance streamed on, on old data, as if it were current."""


def stale_clients(scenario: Scenario, current: dict[str, tuple[int, int]]) -> list[str]:
    """The clients that say they stream but hold a version older than `current`'s."""

    def behind(held: dict[str, tuple[int, int]]) -> bool:
        return any(held.get(doc, (0, 0))[0] < version for doc, (version, _) in current.items())

    stale = [
        f"{o.name} (streaming at revision {o.client.status.revision})"
        for o in scenario.observers
        if o.client.status.mode == "streaming" and behind(o.held())
    ]
    for fleet in scenario.fleets:
        stale += [
            f"stream #{r.index} (streaming at {r.last_id})"
            for r in fleet.records()
            if r.streaming and behind(r.docs)
        ]
    return stale


def test_service_instance_cut_off_from_etcd(
    scenario: Scenario, lab: NetLab, report: Callable[[dict[str, Any]], None]
) -> None:
    """Instance a loses etcd (its gRPC channel's packets dropped) while its clients stay
    connected to it. Its clients must not stay on old data as if it were current; after the
    link heals, everything converges and the checker's invariants hold."""
    a, b = scenario.services
    writer, _fleet = start_steady(scenario)
    link = lab.hosts[f"s{a.name}"].links[BACK]

    logged = len(a.log_text())
    cut_at = lab.cut(link)
    try:
        unready_s = wait_readiness(a, 503, cut_at, STALE_AFTER)
        watch_lost_s = wait_logged(a, WATCH_INTERRUPTED, logged, cut_at, STALE_AFTER)
        time.sleep(max(0.0, cut_at + STALE_AFTER - time.monotonic()))
        with b.client() as api:
            current = read_store(api, NAMESPACE, DOCS).final
        deadline = time.monotonic() + FRESH_WITHIN
        while (stale := stale_clients(scenario, current)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(max(0.0, cut_at + SERVICE_PARTITION_SECONDS - time.monotonic()))
        through_a = writer.log.count(AMBIGUOUS, after=cut_at)
    finally:
        healed_at = lab.heal(link)
    ready_again_s = wait_readiness(a, 200, healed_at, REJOIN_WITHIN)
    writer.wait_acks(ACKS_AFTER, after=time.monotonic())
    wait_until(
        lambda: sum(1 for x in writer.log.acks if x.instance == 0 and x.acked > healed_at) >= 5,
        REJOIN_WITHIN,
        f"writes through {a.name} after the heal",
    )

    figures = scenario.finish()
    report(
        {
            "cut_off": a.name,
            "readyz_503_after_s": unready_s,
            "store_watch_interrupted_after_s": watch_lost_s,
            "writes_failed_through_cut_off_instance": through_a,
            "stale_clients_after_cut": f"{len(stale)} ({', '.join(stale[:3])}...)" if stale else 0,
            "write_gap_s": round(writer.log.gap_around(cut_at), 3),
            "ready_again_after_heal_s": ready_again_s,
            **figures,
        }
    )
    if stale:
        raise LeftStale(
            f"{STALE_AFTER + FRESH_WITHIN:.0f} s after {a.name} lost etcd, {len(stale)} clients "
            f"streamed on old data as if current (the store was at {current}): {stale}"
        )


def wait_logged(
    instance: ServiceInstance, text: str, offset: int, since: float, within: float
) -> float | None:
    """Seconds from `since` until the instance logs `text` past `offset`; None if not
    within `within` (a figure, not a promise)."""
    while time.monotonic() < since + within:
        if text in instance.log_text()[offset:]:
            return round(time.monotonic() - since, 3)
        time.sleep(0.05)
    return None


def wait_readiness(instance: ServiceInstance, status: int, since: float, within: float) -> float:
    """Seconds from `since` until the instance's /readyz answers `status`."""
    deadline = since + within
    while time.monotonic() < deadline:
        if instance.readiness(timeout=within)[0] == status:
            return round(time.monotonic() - since, 3)
        time.sleep(0.05)
    raise AssertionError(f"{instance.name}: /readyz not {status} within {within} s")
