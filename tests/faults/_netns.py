"""A private network of namespaces, to cut links with real packet loss (root only).

Layout (all addresses private, made up per run so that concurrent runs do not collide):

    root namespace (the test: writer, SDK clients, streams, probes)
        | back uplink 10.A.B.1             | front uplink 10.A.B+1.1
    switch namespace: bridge "back"        bridge "front"
        |-- etcd member i: 10.A.B.(11+i)   (its own namespace, one link)
        |-- service s:     10.A.B.(21+s)  -- and 10.A.B+1.(21+s) on "front"

Every host lives in a namespace of its own, linked by a veth pair to a bridge in the switch
namespace (the bridges are not in the root namespace, so the host's own firewall and
bridge-netfilter settings never see their traffic). Every namespace knows every neighbour's
MAC address statically, so ARP never fails: a cut link drops packets silently (no
"no route to host", no reset), as a dead switch port or a partition does.

`cut(link)` sets the switch's end of a link down: nothing passes either way, the host's own
interface keeps its address and routes, its connections stay open and time out as they
would on a real network. `heal(link)` sets it up again.

Namespaces are named `cfsvc-<pid namespace>-<pid>-<token>-<host>`; a run killed before it
cleaned up is cleaned up by the next one in the same pid namespace (its pid is gone).
Namespaces of other pid namespaces (other sandboxes sharing the kernel) are left alone.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field

PREFIX = "cfsvc"
IP_TIMEOUT = 10.0
"""Seconds one `ip` command may take."""
SUBNET_ATTEMPTS = 50
SECOND_OCTETS = range(100, 200)
BACK, FRONT = "back", "front"
UPLINK_HOST = 1
"""The root namespace's address on each segment: 10.A.B.1."""
MEMBER_HOST = 11
"""etcd member i (host `m<i>`) is 10.A.B.(11 + i)."""
SERVICE_HOST = 21
"""Service instance j (host `s<name>`) is 10.A.B.(21 + j) and 10.A.B+1.(21 + j)."""


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (not root, no `ip`, or the kernel refuses)."""


def _ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    command = ["ip", *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    return done.stdout


def _batch(commands: list[str], netns: str | None = None) -> None:
    if commands:
        _ip("-batch", "-", netns=netns, stdin="\n".join(commands) + "\n")


def _owner() -> str:
    """`cfsvc-<pid namespace inode>-<pid>`: whose namespaces these are."""
    return f"{PREFIX}-{os.stat('/proc/self/ns/pid').st_ino}-{os.getpid()}"


def why_unavailable() -> str | None:
    """None when this process can build a `NetLab`, else why not (for a skip reason)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and veth pairs)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    probe = f"{_owner()}-probe{secrets.token_hex(2)}"
    try:
        _ip("netns", "add", probe)
        _ip("link", "add", "br0", "type", "bridge", netns=probe)
        _ip("link", "add", "v0", "type", "veth", "peer", "name", "v1", netns=probe)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return f"cannot make network namespaces, bridges and veth pairs here: {detail.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def remove_stale() -> None:
    """Delete the namespaces of earlier runs (of this pid namespace) whose process is gone."""
    try:
        names = [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]
    except (subprocess.CalledProcessError, OSError):
        return
    _, pid_namespace, _ = _owner().split("-")
    for name in names:
        parts = name.split("-")
        if len(parts) < 4 or parts[:2] != [PREFIX, pid_namespace] or not parts[2].isdigit():
            continue
        if not os.path.exists(f"/proc/{parts[2]}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass(frozen=True, slots=True)
class Link:
    """A host's interface on one segment: its address, and the switch port to cut."""

    host: str
    segment: str
    address: str
    mac: str
    switch_port: str
    """The interface in the switch namespace that `NetLab.cut` sets down."""


@dataclass
class Host:
    """A namespace of its own, with one link per segment it is on."""

    name: str
    netns: str
    links: dict[str, Link] = field(default_factory=dict)

    def address(self, segment: str = BACK) -> str:
        return self.links[segment].address

    def exec_prefix(self) -> list[str]:
        """Prefix a command line with this to run it in the host's namespace (the same
        process: `ip netns exec` enters the namespace, then execs the command)."""
        return ["ip", "netns", "exec", self.netns]


class NetLab:
    """The switch namespace, two segments, and the hosts added to them. `close()` removes
    everything (namespaces, bridges, every veth pair) once the hosts' processes are gone."""

    def __init__(self) -> None:
        remove_stale()
        self.token = secrets.token_hex(3)
        self._namespaces: list[str] = []
        self.hosts: dict[str, Host] = {}
        self._macs = 0
        self._ports = 0
        self._subnets = self._pick_subnets()
        self.switch = self._add_namespace("switch")
        try:
            _batch(
                [f"link add {segment} type bridge" for segment in (BACK, FRONT)]
                + [f"link set {segment} up" for segment in (BACK, FRONT)]
                + ["link set lo up"],
                netns=self.switch,
            )
            self.uplinks = {segment: self._uplink(segment) for segment in (BACK, FRONT)}
        except BaseException:
            self.close()
            raise

    # ---- building ----------------------------------------------------------------------

    def _pick_subnets(self) -> dict[str, ipaddress.IPv4Network]:
        """Two /24s, 10.A.B.0 and 10.A.B+1.0, that no route of the root namespace touches."""
        routes = json.loads(_ip("-j", "route", "show", "table", "all") or "[]")
        taken = []
        for route in routes:
            dst = route.get("dst", "")
            if dst and dst != "default" and ":" not in dst:
                try:
                    taken.append(ipaddress.IPv4Network(dst, strict=False))
                except ValueError:
                    continue
        rng = random.Random()
        for _ in range(SUBNET_ATTEMPTS):
            a, b = rng.choice(SECOND_OCTETS), rng.randrange(0, 254, 2)
            pair = ipaddress.IPv4Network(f"10.{a}.{b}.0/23")
            if not any(pair.overlaps(net) for net in taken):
                return {
                    BACK: ipaddress.IPv4Network(f"10.{a}.{b}.0/24"),
                    FRONT: ipaddress.IPv4Network(f"10.{a}.{b + 1}.0/24"),
                }
        raise NetnsUnavailable("no free 10.x.y.0/23 for the test network")

    def _add_namespace(self, name: str) -> str:
        netns = f"{_owner()}-{self.token}-{name}"
        _ip("netns", "add", netns)
        self._namespaces.append(netns)
        return netns

    def _mac(self) -> str:
        self._macs += 1
        n = self._macs
        return f"02:cf:{self.token[:2]}:{self.token[2:4]}:{n >> 8:02x}:{n & 0xFF:02x}"

    def _address(self, segment: str, host_number: int) -> str:
        return str(self._subnets[segment].network_address + host_number)

    def _prefix_len(self, segment: str) -> int:
        return self._subnets[segment].prefixlen

    def _uplink(self, segment: str) -> Link:
        """The root namespace's link to `segment` (the test's own address there)."""
        mine = f"cf{self.token}{segment[0]}"
        port = self._next_port()
        mac = self._mac()
        address = self._address(segment, UPLINK_HOST)
        _ip("link", "add", mine, "address", mac, "type", "veth", "peer", "name", port,
            "netns", self.switch)  # fmt: skip
        prefix = self._prefix_len(segment)
        _batch([f"addr add {address}/{prefix} dev {mine}", f"link set {mine} up"])
        _batch([f"link set {port} master {segment}", f"link set {port} up"], netns=self.switch)
        return Link("root", segment, address, mac, port)

    def _next_port(self) -> str:
        self._ports += 1
        return f"p{self._ports}"

    def add_host(self, name: str, host_number: int, segments: tuple[str, ...] = (BACK,)) -> Host:
        """A namespace with a link to each of `segments`, at 10.A.B(+1).`host_number`."""
        host = Host(name, self._add_namespace(name))
        commands = ["link set lo up"]
        for index, segment in enumerate(segments):
            port = self._next_port()
            mac = self._mac()
            address = self._address(segment, host_number)
            inside = f"eth{index}"
            _ip("link", "add", inside, "address", mac, "netns", host.netns, "type", "veth",
                "peer", "name", port, "netns", self.switch)  # fmt: skip
            commands += [
                f"addr add {address}/{self._prefix_len(segment)} dev {inside}",
                f"link set {inside} up",
            ]
            _batch([f"link set {port} master {segment}", f"link set {port} up"], netns=self.switch)
            host.links[segment] = Link(name, segment, address, mac, port)
        _batch(commands, netns=host.netns)
        self.hosts[name] = host
        return host

    def pin_neighbours(self) -> None:
        """Tell every namespace every neighbour's MAC (permanent entries): once all hosts
        are added, so that a cut link drops packets instead of failing ARP."""
        for segment in (BACK, FRONT):
            links = [self.uplinks[segment]] + [
                h.links[segment] for h in self.hosts.values() if segment in h.links
            ]
            for me in links:
                device = (
                    f"cf{self.token}{segment[0]}"
                    if me.host == "root"
                    else f"eth{list(self.hosts[me.host].links).index(segment)}"
                )
                commands = [
                    f"neigh replace {other.address} lladdr {other.mac} dev {device} nud permanent"
                    for other in links
                    if other is not me
                ]
                netns = None if me.host == "root" else self.hosts[me.host].netns
                _batch(commands, netns=netns)

    @classmethod
    def for_faults(cls, members: int, services: list[str]) -> NetLab:
        """The fault suite's layout: `members` etcd hosts (`m0`, ...) on the back segment,
        a host per service (`s<name>`) on both segments, neighbours pinned."""
        lab = cls()
        try:
            for i in range(members):
                lab.add_host(f"m{i}", MEMBER_HOST + i)
            for j, name in enumerate(services):
                lab.add_host(f"s{name}", SERVICE_HOST + j, (BACK, FRONT))
            lab.pin_neighbours()
        except BaseException:
            lab.close()
            raise
        return lab

    # ---- faults ------------------------------------------------------------------------

    def cut(self, link: Link) -> float:
        """Drop every packet to and from `link` (its switch port down); returns when."""
        at = time.monotonic()
        _ip("link", "set", link.switch_port, "down", netns=self.switch)
        return at

    def heal(self, link: Link) -> float:
        _ip("link", "set", link.switch_port, "up", netns=self.switch)
        return time.monotonic()

    # ---- cleanup -----------------------------------------------------------------------

    def close(self) -> None:
        """Delete every namespace of this lab (their veth pairs and bridges go with them;
        the root namespace's ends are deleted at once, not when the kernel gets to it)."""
        for segment in (BACK, FRONT):
            subprocess.run(
                ["ip", "link", "del", f"cf{self.token}{segment[0]}"],
                capture_output=True,
                check=False,
            )
        for netns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        self._namespaces.clear()
