"""A 3-member etcd cluster on loopback, with the faults the suite injects into it.

Every member is a `ClusterMember` (free ports, one data dir each, raft timers of 50 ms
heartbeat / 500 ms election: three members share two cores). Members are spawned from the
calling thread and die with it (parent-death signal), so start and restart them from the
test's main thread only.

Given a `NetLab`, each member runs in a network namespace of its own and listens on the
address the lab gives it (ports 2379/2380: nothing else listens there), so that its links
can be cut (`tests/faults/_netns.py`).
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import LOOPBACK, EtcdProcess, free_port
from configsvc.errors import EtcdStartError
from tests.faults._netns import NetLab

MEMBERS = 3
HEARTBEAT_MS = 50
ELECTION_TIMEOUT_MS = 500
START_ATTEMPTS = 3
"""Cluster starts tried when a port picked free was taken before etcd bound it."""
ADDRESS_IN_USE = "address already in use"
START_TIMEOUT = 30.0
"""Seconds a member (or the cluster) may take to answer healthy."""
ELECTION_DEADLINE = 20.0
"""Seconds a new leader may take to be reported after a fault."""
STATUS_POLL = 0.005
"""Seconds between status probes while an election is timed."""
STATUS_TIMEOUT = 0.25
"""Seconds one status probe may take (a frozen member never answers)."""
GATEWAY_TIMEOUT = 10.0
HEALTH_POLL = 0.02
HEALTH_PROBE_TIMEOUT = 1.0
CLIENT_PORT_IN_NAMESPACE = 2379
PEER_PORT_IN_NAMESPACE = 2380


STATUS_PATH = "/v3/maintenance/status"


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """What one etcd member says of itself and its cluster (`Maintenance.Status`)."""

    member_id: int
    leader: int
    """The member id of the leader this member follows; 0 while it knows no leader."""
    raft_term: int
    revision: int


@dataclass
class ClusterMember(EtcdProcess):
    """One member of a cluster: every member gets the same `initial_cluster`
    (`name=peer_url,...` of all members) and `cluster_token`. Spawn them all, then
    `wait_healthy` on each: a member answers healthy only once a quorum has elected a
    leader. A member restarted on its data dir rejoins from its write-ahead log (the initial
    flags are ignored then)."""

    initial_cluster: str = ""
    cluster_token: str = ""
    host: str = LOOPBACK
    """The address it listens on (a lab's address when in a namespace)."""
    command_prefix: tuple[str, ...] = ()
    """Run etcd through this (`ip netns exec NS`: the same process, in the namespace)."""
    extra_flags: tuple[str, ...] = ()

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    def args(self) -> list[str]:
        args = super().args()
        args[args.index("--initial-cluster") + 1] = self.initial_cluster
        flags = ["--initial-cluster-token", self.cluster_token, *self.extra_flags]
        return [*self.command_prefix, *args, *flags]

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Block until `/health` answers healthy on the member's own address."""
        if self.host == LOOPBACK:
            super().wait_healthy(timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid is not None and not self.running:
                raise EtcdStartError(f"{self.name} exited while starting; see {self.log_path}")
            if self._healthy():
                return
            time.sleep(HEALTH_POLL)
        raise EtcdStartError(f"{self.name} at {self.client_url} not healthy after {timeout}s")

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.client_port, timeout=HEALTH_PROBE_TIMEOUT)
        try:
            conn.request("GET", "/health")
            return bool(json.loads(conn.getresponse().read()).get("health") == "true")
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            return False
        finally:
            conn.close()

    def status(self, timeout: float) -> MemberStatus | None:
        """This member's status; None when it does not answer in time (dead, frozen)."""
        conn = http.client.HTTPConnection(self.host, self.client_port, timeout=timeout)
        try:
            conn.request("POST", STATUS_PATH, body=b"{}")
            data = json.loads(conn.getresponse().read())
            header = data["header"]
            return MemberStatus(
                member_id=int(header["member_id"]),
                leader=int(data.get("leader", 0)),
                raft_term=int(data.get("raftTerm", header.get("raft_term", 0))),
                revision=int(header.get("revision", 0)),
            )
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            return None
        finally:
            conn.close()


@dataclass(frozen=True, slots=True)
class Election:
    """A leader change seen from the surviving members."""

    old_leader: int
    new_leader: int
    seconds: float
    """From the fault to the first status of a surviving member naming a new leader."""


class EtcdCluster:
    """Three etcd members of one cluster, in `workdir/<name>/`, logs in `workdir/<name>.log`.

    `quota_bytes` sets each member's `--quota-backend-bytes`; with `lab`, member `m<i>` runs
    on the lab's host of that name (its own namespace and address on the back segment).
    """

    def __init__(
        self,
        workdir: Path,
        binary: Path | None = None,
        *,
        quota_bytes: int | None = None,
        lab: NetLab | None = None,
    ) -> None:
        binary = binary or find_etcd_binary()
        token = f"faults-{uuid.uuid4().hex[:12]}"
        flags = ("--quota-backend-bytes", str(quota_bytes)) if quota_bytes else ()
        self.members: list[ClusterMember] = []
        for i in range(MEMBERS):
            member = ClusterMember(
                binary=binary,
                data_dir=workdir / f"m{i}",
                name=f"m{i}",
                heartbeat_ms=HEARTBEAT_MS,
                election_timeout_ms=ELECTION_TIMEOUT_MS,
                cluster_token=token,
                log_path=workdir / f"m{i}.log",
                extra_flags=flags,
            )
            if lab is not None:
                host = lab.hosts[member.name]
                member.host = host.address()
                member.command_prefix = tuple(host.exec_prefix())
                member.client_port = CLIENT_PORT_IN_NAMESPACE
                member.peer_port = PEER_PORT_IN_NAMESPACE
            self.members.append(member)
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        """The client URLs of every member, in order (what the services are given)."""
        return [m.client_url for m in self.members]

    def start(self) -> None:
        """Spawn every member, then wait until each answers healthy (a leader is elected).

        Ports are picked free, not reserved: if another process took one meanwhile, the
        cluster starts over on new ports (and fresh data dirs).
        """
        for attempt in range(START_ATTEMPTS):
            for member in self.members:
                member.spawn()
            try:
                for member in self.members:
                    member.wait_healthy(START_TIMEOUT)
                return
            except EtcdStartError:
                port_taken = any(_port_taken(m) for m in self.members)
                self.stop()
                if not port_taken or attempt == START_ATTEMPTS - 1:
                    raise
                self._new_cluster()
            except BaseException:
                self.stop()
                raise

    def _new_cluster(self) -> None:
        token = f"faults-{uuid.uuid4().hex[:12]}"
        for member in self.members:
            shutil.rmtree(member.data_dir, ignore_errors=True)
            member.client_port, member.peer_port = free_port(), free_port()
            member.cluster_token = token
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    # ---- who leads ---------------------------------------------------------------------

    def statuses(self, timeout: float = STATUS_TIMEOUT) -> dict[str, MemberStatus]:
        """The status of every member that answers, by member name."""
        found = {}
        for member in self.members:
            if member.running:
                status = member.status(timeout)
                if status is not None:
                    found[member.name] = status
        return found

    def leader(self, within: float = ELECTION_DEADLINE) -> ClusterMember:
        """The member that the answering members agree leads (waits for agreement)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            statuses = self.statuses()
            leaders = {s.leader for s in statuses.values()}
            if len(statuses) >= 2 and len(leaders) == 1 and 0 not in leaders:
                leader_id = leaders.pop()
                for member in self.members:
                    status = statuses.get(member.name)
                    if status is not None and status.member_id == leader_id:
                        return member
            time.sleep(STATUS_POLL)
        raise AssertionError(f"no agreed leader within {within} s: {self.statuses()}")

    def member_id(self, member: ClusterMember) -> int:
        status = member.status(GATEWAY_TIMEOUT)
        assert status is not None, f"{member.name} does not answer"
        return status.member_id

    def wait_new_leader(
        self, old_leader: int, since: float, survivors: list[ClusterMember]
    ) -> Election:
        """Time until a survivor reports a leader other than `old_leader` (from `since`)."""
        deadline = since + ELECTION_DEADLINE
        while time.monotonic() < deadline:
            for member in survivors:
                status = member.status(STATUS_TIMEOUT)
                if status is not None and status.leader not in (0, old_leader):
                    return Election(old_leader, status.leader, time.monotonic() - since)
            time.sleep(STATUS_POLL)
        raise AssertionError(f"no new leader within {ELECTION_DEADLINE} s after the fault")

    def make_leader(self, target: ClusterMember) -> None:
        """Move leadership to `target` (etcd's MoveLeader, asked of the current leader)."""
        deadline = time.monotonic() + ELECTION_DEADLINE
        target_id = self.member_id(target)
        while time.monotonic() < deadline:
            current = self.leader()
            if current is target:
                return
            self._post(current, "/v3/maintenance/transfer-leadership", {"targetID": target_id})
            time.sleep(STATUS_POLL)
        raise AssertionError(f"leadership did not move to {target.name}")

    # ---- faults ------------------------------------------------------------------------

    def kill(self, member: EtcdProcess) -> float:
        """SIGKILL `member`; returns the monotonic time of the kill."""
        at = time.monotonic()
        member.kill()
        return at

    def freeze(self, member: EtcdProcess) -> float:
        """SIGSTOP `member`; returns the monotonic time of the freeze."""
        at = time.monotonic()
        member.signal(signal.SIGSTOP)
        return at

    def thaw(self, member: EtcdProcess) -> None:
        member.signal(signal.SIGCONT)

    def restart(self, member: EtcdProcess) -> None:
        """Start a killed member again on its data dir and ports; it rejoins from its WAL."""
        member.restart(START_TIMEOUT)

    def wait_healthy(self) -> None:
        for member in self.members:
            member.wait_healthy(START_TIMEOUT)

    def revision(self) -> int:
        """The store's current revision, as the leader reports it."""
        status = self.leader().status(GATEWAY_TIMEOUT)
        assert status is not None
        return status.revision

    def compact(self, revision: int) -> None:
        """Compact etcd's MVCC history up to `revision` (physically, on every member)."""
        self._post(self.leader(), "/v3/kv/compaction", {"revision": revision, "physical": True})

    def _post(self, member: ClusterMember, path: str, body: dict[str, object]) -> dict[str, object]:
        conn = http.client.HTTPConnection(member.host, member.client_port, timeout=GATEWAY_TIMEOUT)
        try:
            conn.request("POST", path, body=json.dumps(body).encode())
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        assert response.status == 200, f"{path} on {member.name}: {response.status} {data!r}"
        parsed: dict[str, object] = json.loads(data)
        return parsed


def _port_taken(member: EtcdProcess) -> bool:
    """Whether `member` exited because one of its ports was taken."""
    if member.running or member.log_path is None or not member.log_path.exists():
        return False
    return ADDRESS_IN_USE in member.log_path.read_text(errors="replace")
