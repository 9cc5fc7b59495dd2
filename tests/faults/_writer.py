"""A compare-and-set writer at a steady rate, against the service instances in turn.

Every write carries a unique id in its `message` (kept in the history) and in its spec, and
`If-Match` with the revision the writer last saw for the document. Outcomes are recorded:
acknowledged (200/201: version and revision), refused before reaching a service (connection
refused: certainly not applied), precondition failed (412), store full (507: the service
knows nothing was written), and ambiguous (503, a timeout or a cut connection: applied or
not, the writer cannot tell). After an ambiguous outcome the writer reads the document
again before it writes it next; after a definite refusal its revision is still current.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

KIND = "RateLimits"
WRITE_INTERVAL = 0.05
"""Seconds between the starts of two writes (20 writes per second)."""
REQUEST_TIMEOUT = 5.0
"""The writer's HTTP timeout; the services answer 503 after their store deadline first."""
STORE_FULL_STATUS = 507

REFUSED = "refused"
PRECONDITION = "precondition"
STORE_FULL = "store_full"
AMBIGUOUS = "ambiguous"
DEFINITE_REFUSALS = frozenset({REFUSED, PRECONDITION, STORE_FULL})
"""Outcomes that say the write was not applied (the checker holds them to it)."""


def spec_for(seq: int) -> dict[str, Any]:
    """A valid RateLimits spec that tells write `seq` apart from every other."""
    return {"limits": {"chat": {"requests_per_second": seq, "burst": 1}}}


LARGE_SPEC_LIMITS = 3300
"""Limits in a `large_spec`: ~400 KB of JSON, under the services' 512 KiB body limit."""
LARGE_SPEC_NAME_BYTES = 40
"""Random bytes in each of its limit names (80 hex characters)."""


def large_spec() -> dict[str, Any]:
    """A valid RateLimits spec of ~400 KB unlike any other (random limit names): ballast."""
    limit = {"requests_per_second": 1, "burst": 1}
    names = (secrets.token_hex(LARGE_SPEC_NAME_BYTES) for _ in range(LARGE_SPEC_LIMITS))
    return {"limits": dict.fromkeys(names, limit)}


def write_id(seq: int) -> str:
    return f"w{seq}"


@dataclass(frozen=True, slots=True)
class Ack:
    doc: str
    version: int
    revision: int
    write: str
    instance: int
    sent: float
    acked: float


@dataclass(frozen=True, slots=True)
class Failure:
    doc: str
    write: str
    instance: int
    sent: float
    ended: float
    outcome: str
    """`ambiguous`, `refused` (never reached a service), `precondition` (412) or
    `store_full` (507); all but `ambiguous` are definite: nothing was written."""
    reason: str


@dataclass
class WriteLog:
    """Everything the writer did, in order."""

    acks: list[Ack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    attempted: set[str] = field(default_factory=set)

    def ambiguous(self) -> list[Failure]:
        return [f for f in self.failures if f.outcome == AMBIGUOUS]

    def refused(self) -> list[Failure]:
        """The writes answered with a definite refusal (not applied, by the answer)."""
        return [f for f in self.failures if f.outcome in DEFINITE_REFUSALS]

    def count(self, outcome: str, after: float = 0.0) -> int:
        return sum(1 for f in self.failures if f.outcome == outcome and f.ended > after)

    def first(self, outcome: str, after: float = 0.0) -> Failure | None:
        return next((f for f in self.failures if f.outcome == outcome and f.ended > after), None)

    def longest_gap(self, since: float) -> tuple[float, float]:
        """The longest time without an acknowledged write after `since`, and when it began.

        Counts from `since` to the first ack, between successive acks, and not past the
        last ack (the writer is stopped after a run's last ack).
        """
        times = [since, *sorted(a.acked for a in self.acks if a.acked > since)]
        best, began = 0.0, since
        for before, after in itertools.pairwise(times):
            if after - before > best:
                best, began = after - before, before
        return best, began

    def gap_around(self, moment: float) -> float:
        """From the last ack before `moment` to the first ack after it: the time writes
        were unavailable across a fault injected at `moment`."""
        before = max((a.acked for a in self.acks if a.acked <= moment), default=moment)
        after = min((a.acked for a in self.acks if a.acked > moment), default=moment)
        return after - before

    def acks_after(self, moment: float) -> int:
        return sum(1 for a in self.acks if a.acked > moment)


class CasWriter:
    """Writes the documents of `namespace` in turn, to the instances in turn, in a thread."""

    def __init__(
        self,
        urls: list[str],
        token: str,
        namespace: str,
        docs: list[str],
        *,
        interval: float = WRITE_INTERVAL,
    ) -> None:
        self.urls = urls
        self.namespace = namespace
        self.docs = docs
        self.interval = interval
        self.log = WriteLog()
        self._headers = {"Authorization": f"Bearer {token}"}
        self._clients = [
            httpx.Client(base_url=url, headers=self._headers, timeout=REQUEST_TIMEOUT)
            for url in urls
        ]
        self._known: dict[str, int | None] = {}
        """The revision each document was last seen at; None: unknown (read it first)."""
        self._seq = 0
        self._turn = 0
        self._targets = list(range(len(urls)))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cas-writer", daemon=True)
        self.started_at = 0.0

    # ---- control -----------------------------------------------------------------------

    def create_documents(self) -> None:
        """Create every document (create-only), before the clients start."""
        for doc in self.docs:
            outcome = self._write(doc, 0, create=True)
            assert outcome == "ack", f"creating {doc}: {self.log.failures[-1:]}"

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2 * REQUEST_TIMEOUT + 5)
        for client in self._clients:
            client.close()

    def use(self, instances: list[int]) -> None:
        """Write only to these instances from now on (as a load balancer would route)."""
        self._targets = list(instances)

    @property
    def acked(self) -> int:
        with self._lock:
            return len(self.log.acks)

    def wait_acks(self, count: int, after: float | None = None, within: float = 60.0) -> None:
        """Block until `count` writes were acknowledged (after the moment `after`)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                done = (
                    len(self.log.acks) if after is None else self.log.acks_after(after)
                ) >= count
            if done:
                return
            time.sleep(0.01)
        raise AssertionError(f"fewer than {count} acknowledged writes within {within} s")

    # ---- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        next_at = time.monotonic()
        index = 0
        while not self._stop.is_set():
            doc = self.docs[index % len(self.docs)]
            index += 1
            targets = self._targets
            instance = targets[self._turn % len(targets)]
            self._turn += 1
            self._write(doc, instance)
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:
                next_at = now  # behind schedule (an outage): go on at once, no burst later
            self._stop.wait(next_at - now)

    def _refresh(self, doc: str, instance: int) -> bool:
        """Read `doc`'s current revision (after an ambiguous outcome); False if unreadable."""
        try:
            response = self._clients[instance].get(f"/v1/configs/{self.namespace}/{doc}")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        self._known[doc] = int(response.json()["revision"])
        return True

    def _write(self, doc: str, instance: int, *, create: bool = False) -> str:
        if not create and self._known.get(doc) is None and not self._refresh(doc, instance):
            return "unread"
        self._seq += 1
        wid = write_id(self._seq)
        headers = {"If-None-Match": "*"} if create else {"If-Match": f'"{self._known[doc]}"'}
        body = {"kind": KIND, "spec": spec_for(self._seq), "message": wid}
        sent = time.monotonic()
        with self._lock:
            self.log.attempted.add(wid)
        try:
            response = self._clients[instance].put(
                f"/v1/configs/{self.namespace}/{doc}", json=body, headers=headers
            )
        except httpx.ConnectError as exc:
            return self._failed(doc, wid, instance, sent, REFUSED, type(exc).__name__)
        except httpx.HTTPError as exc:
            self._known[doc] = None
            return self._failed(doc, wid, instance, sent, AMBIGUOUS, type(exc).__name__)
        if response.status_code in (200, 201):
            data = response.json()
            self._known[doc] = int(data["revision"])
            ack = Ack(
                doc, int(data["version"]), int(data["revision"]), wid, instance, sent,
                time.monotonic(),
            )  # fmt: skip
            with self._lock:
                self.log.acks.append(ack)
            return "ack"
        if response.status_code == 412:
            self._known[doc] = None
            return self._failed(doc, wid, instance, sent, PRECONDITION, "412")
        if response.status_code == STORE_FULL_STATUS:
            reason = f"{STORE_FULL_STATUS} {_error_code(response)}"
            return self._failed(doc, wid, instance, sent, STORE_FULL, reason)
        self._known[doc] = None
        return self._failed(doc, wid, instance, sent, AMBIGUOUS, str(response.status_code))

    def _failed(
        self, doc: str, wid: str, instance: int, sent: float, outcome: str, reason: str
    ) -> str:
        failure = Failure(doc, wid, instance, sent, time.monotonic(), outcome, reason)
        with self._lock:
            self.log.failures.append(failure)
        return outcome


def _error_code(response: httpx.Response) -> str:
    """The contract's `error.code` of an error answer (or what stood in its place)."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"no error code: {response.text[:80]!r}"
