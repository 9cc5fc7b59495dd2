"""Applying local documents one by one, each with its own outcome (never one transaction)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from configsvc_schemas.wire import schema_path

from configsvc.cli._errors import FileError, ServiceError
from configsvc.cli._files import LocalDocument, load_file
from configsvc.cli._http import Api, doc_path
from configsvc.cli._refs import DocRef


class Result(enum.StrEnum):
    """What happened to one document."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    WOULD_CREATE = "would create"
    WOULD_UPDATE = "would update"
    REFUSED = "refused"
    """The service refused it (schema violations, forbidden namespace, …)."""
    FAILED = "failed"
    """It could not be read (broken YAML, no namespace, …)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one document, or to one kind (`kind` set, no `ref`)."""

    result: Result
    source: str
    ref: DocRef | None = None
    version: int | None = None
    error: str | None = None
    kind: str | None = None

    @property
    def failed(self) -> bool:
        return self.result in (Result.REFUSED, Result.FAILED)

    @property
    def subject(self) -> str | None:
        if self.ref is not None:
            return str(self.ref)
        return f"kind {self.kind}" if self.kind else None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind} if self.kind else {}
        if not self.kind:
            found["namespace"] = self.ref.namespace if self.ref else None
            found["name"] = self.ref.name if self.ref else None
        return {
            **found,
            "source": self.source,
            "result": self.result.value,
            "version": self.version,
            "error": self.error,
        }

    def describe(self) -> str:
        """One line for people, e.g. `updated       prod/chat-models  version 4  (a.yaml:1)`."""
        if self.failed:
            subject = f"{self.subject} ({self.source})" if self.subject else self.source
            return f"{subject}: {self.error}"
        version = f"  version {self.version}" if self.version is not None else ""
        return f"{self.result.value:<12}  {self.subject}{version}  ({self.source})"


SERVICE_SET_FIELDS = frozenset({"version", "revision", "updated_at", "updated_by"})
"""Fields only the service sets: a document holding them was read from the service."""


def with_message(body: dict[str, Any], message: str | None) -> dict[str, Any]:
    """`body` with `message` as its change message when it has none of its own, or when it
    was read back from the service (its message then describes the version read, not
    this change)."""
    if not message:
        return body
    if body.get("message") and not SERVICE_SET_FIELDS & body.keys():
        return body
    return {**body, "message": message}


class Applier:
    """Puts documents through one API connection; `dry_run` validates and stores nothing;
    `message` is the change message of documents and kinds that have none (`with_message`).

    Failures of one document are outcomes; failures of the connection (unreachable service,
    bad token) raise `CliError`, since every other document would fail the same way.
    """

    def __init__(self, api: Api, *, dry_run: bool = False, message: str | None = None) -> None:
        self._api = api
        self._dry_run = dry_run
        self._message = message

    def apply_file(self, path: Path) -> Iterator[Outcome]:
        yield from self.apply_files([path])

    def apply_files(self, paths: list[Path], *, kinds_only: bool = False) -> Iterator[Outcome]:
        """Apply every kind file of `paths` first (documents may need them), then every
        document; with `kinds_only`, a document is a failure."""
        loaded: list[LocalDocument | Outcome] = []  # in file order; unreadable files too
        for path in paths:
            try:
                loaded += load_file(path)
            except FileError as exc:
                where = f"{exc.path}:{exc.line}" if exc.line is not None else exc.path
                loaded.append(Outcome(Result.FAILED, where, error=exc.reason))
        for document in loaded:
            if isinstance(document, LocalDocument) and document.is_kind:
                yield self.apply_kind(document)
        for document in loaded:
            if isinstance(document, Outcome):
                yield document
            elif document.is_kind:
                continue
            elif kinds_only:
                error = (
                    "not a kind file (a kind file has top-level kind and schema; "
                    "documents go through configsvc apply -f)"
                )
                yield Outcome(Result.FAILED, document.where, error=error)
            else:
                yield self.apply_document(document)

    def apply_kind(self, document: LocalDocument) -> Outcome:
        """PUT one kind file (`kind`, `schema`, optional `description` and `message`)."""
        try:
            kind = document.kind_name()
        except FileError as exc:
            return Outcome(Result.FAILED, document.where, error=exc.reason)
        body = {
            key: document.body[key]
            for key in ("schema", "description", "message")
            if document.body.get(key) is not None
        }
        body = with_message(body, self._message)
        unknown = sorted(set(document.body) - {"kind", "schema", "description", "message"})
        if unknown:
            error = f"unknown field(s) in a kind file: {', '.join(unknown)}"
            return Outcome(Result.FAILED, document.where, error=error, kind=kind)
        params = {"dry_run": "true"} if self._dry_run else None
        try:
            response = self._api.request("PUT", schema_path(kind), params=params, body=body)
        except ServiceError as exc:
            if exc.status == 401:
                raise
            return Outcome(Result.REFUSED, document.where, error=exc.summary(), kind=kind)
        return self._outcome(response, document.where, None, kind)

    def apply_document(self, document: LocalDocument) -> Outcome:
        try:
            ref = document.ref()
        except FileError as exc:
            return Outcome(Result.FAILED, document.where, error=exc.reason)
        try:
            return self._put(ref, document)
        except ServiceError as exc:
            if exc.status == 401:
                raise
            return Outcome(Result.REFUSED, document.where, ref, error=exc.summary())

    def _put(self, ref: DocRef, document: LocalDocument) -> Outcome:
        path = doc_path(ref.namespace, ref.name)
        params = {"dry_run": "true"} if self._dry_run else None
        body = with_message(document.body, self._message)
        response = self._api.request("PUT", path, params=params, body=body)
        return self._outcome(response, document.where, ref, None)

    def _outcome(
        self, response: httpx.Response, where: str, ref: DocRef | None, kind: str | None
    ) -> Outcome:
        written = response.json()
        if response.status_code == 201:
            result = Result.WOULD_CREATE if self._dry_run else Result.CREATED
        elif written.get("changed") is False:
            result = Result.UNCHANGED
        else:
            result = Result.WOULD_UPDATE if self._dry_run else Result.UPDATED
        return Outcome(result, where, ref, written.get("version"), kind=kind)
