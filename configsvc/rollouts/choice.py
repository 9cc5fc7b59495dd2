"""Which SDK instances a rollout chooses: a stable hash of the rollout and the instance.

An instance is chosen when its labels include every label of the rollout's `match` and its
bucket, `sha256(rollout id + "/" + instance id)` reduced to `0 … BUCKETS-1`, is below the
current percent's share of the buckets. Nothing is stored per instance: every service
instance computes the same answer from the rollout record and the instance's own id and
labels, so the choice survives the instance's reconnects, a restart of the service and a
move to another service instance. The set only grows with the percent, so an instance chosen
at 10 % is still chosen at 50 %. An instance that does not name itself is never chosen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from configsvc_schemas.wire import INSTANCE_ID_RULE, is_valid_instance_id, label_problems

from configsvc.errors import BadRequest
from configsvc.store.rollout_record import RolloutRecord, RolloutState

BUCKETS = 10_000
"""Buckets an instance falls in: percents are honoured to 0.01."""
BUCKET_DIGEST_BYTES = 8
MAX_LABELS_HEADER_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """An SDK instance as it names itself (`X-Configsvc-Instance`, `X-Configsvc-Labels`)."""

    instance: str
    labels: Mapping[str, str] = field(default_factory=dict)


def bucket(rollout_id: str, instance: str) -> int:
    """The instance's bucket for this rollout (independent of other rollouts' buckets)."""
    digest = hashlib.sha256(f"{rollout_id}/{instance}".encode()).digest()
    return int.from_bytes(digest[:BUCKET_DIGEST_BYTES], "big") % BUCKETS


def threshold(percent: float) -> int:
    """Buckets below this are chosen at `percent`."""
    return round(percent * BUCKETS / 100)


def matches(required: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in required.items())


def chosen_at(
    record: RolloutRecord, state: RolloutState, percent: float, identity: Identity | None
) -> bool:
    """Whether `identity` gets the candidate of `record` while it is in `state` at `percent`."""
    if identity is None or not state.active or not matches(record.match_labels, identity.labels):
        return False
    return bucket(record.id, identity.instance) < threshold(percent)


def is_chosen(record: RolloutRecord, identity: Identity | None) -> bool:
    """Whether `identity` gets the candidate of `record` now."""
    return chosen_at(record, record.state, record.percent, identity)


def identity_from_headers(instance: str | None, labels: str | None) -> Identity | None:
    """The identity an SDK sends with its watch request and polls; None when it sends no
    instance id; 400 when a header is malformed."""
    if not instance:
        if labels:
            raise BadRequest("X-Configsvc-Labels needs X-Configsvc-Instance")
        return None
    if not is_valid_instance_id(instance):
        raise BadRequest(f"invalid X-Configsvc-Instance: {INSTANCE_ID_RULE}")
    parsed: object = {}
    if labels:
        if len(labels) > MAX_LABELS_HEADER_BYTES:
            raise BadRequest(f"X-Configsvc-Labels is over {MAX_LABELS_HEADER_BYTES} bytes")
        try:
            parsed = json.loads(labels)
        except ValueError:
            raise BadRequest("X-Configsvc-Labels must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise BadRequest("X-Configsvc-Labels must be a JSON object")
    problems = label_problems(parsed)
    if problems:
        raise BadRequest("invalid X-Configsvc-Labels: " + "; ".join(problems))
    return Identity(instance, parsed)
