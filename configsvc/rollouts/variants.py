"""What a namespace's snapshot or listing says to one SDK instance while rollouts run.

A snapshot (or a poll's listing) states the whole namespace at one revision, so it must
state each rollout's effect too: an instance chosen for an active rollout gets the candidate
in place of the current version, and every named instance gets a document with a rollout
record newer than it at the record's revision. That revision is newer than any event of
the rollout the instance may have applied, so an instance that held a candidate when the
rollout was aborted takes the current version back from any later snapshot or poll (the SDK
never goes back in revision, and takes an equal version again without calling anyone).
Clients that do not name themselves get the documents as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from configsvc.rollouts.choice import Identity, is_chosen
from configsvc.store.records import Document
from configsvc.store.rollout_reads import ServedRollout


def served_documents(
    documents: Sequence[Document], rollouts: Iterable[ServedRollout], identity: Identity | None
) -> tuple[list[Document], frozenset[tuple[str, str]]]:
    """The documents as `identity` gets them, and the `(ns, name)` it gets a candidate of."""
    if identity is None:
        return list(documents), frozenset()
    by_key = {(s.record.namespace, s.record.name): s for s in rollouts}
    if not by_key:
        return list(documents), frozenset()
    served: list[Document] = []
    candidates: set[tuple[str, str]] = set()
    for document in documents:
        key = (document.namespace, document.name)
        rollout = by_key.get(key)
        if rollout is None:
            served.append(document)
            continue
        record = rollout.record
        if rollout.candidate is not None and is_chosen(record, identity):
            served.append(rollout.candidate)
            candidates.add(key)
        elif record.revision > document.revision:
            served.append(dataclasses.replace(document, revision=record.revision))
        else:
            served.append(document)
    return served, frozenset(candidates)


def chosen_keys(
    rollouts: Iterable[ServedRollout], identity: Identity | None
) -> frozenset[tuple[str, str]]:
    """The `(ns, name)` of the active rollouts `identity` is chosen for."""
    if identity is None:
        return frozenset()
    return frozenset(
        (s.record.namespace, s.record.name)
        for s in rollouts
        if s.candidate is not None and is_chosen(s.record, identity)
    )
