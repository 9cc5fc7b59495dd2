"""Applying local documents one by one, each with its own outcome (never one transaction)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    result: Result
    source: str
    ref: DocRef | None = None
    version: int | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.result in (Result.REFUSED, Result.FAILED)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.ref.namespace if self.ref else None,
            "name": self.ref.name if self.ref else None,
            "source": self.source,
            "result": self.result.value,
            "version": self.version,
            "error": self.error,
        }

    def describe(self) -> str:
        """One line for people, e.g. `updated       prod/chat-models  version 4  (a.yaml:1)`."""
        if self.failed:
            subject = f"{self.ref} ({self.source})" if self.ref else self.source
            return f"{subject}: {self.error}"
        version = f"  version {self.version}" if self.version is not None else ""
        return f"{self.result.value:<12}  {self.ref}{version}  ({self.source})"


class Applier:
    """Puts documents through one API connection; `dry_run` validates and stores nothing.

    Failures of one document are outcomes; failures of the connection (unreachable service,
    bad token) raise `CliError`, since every other document would fail the same way.
    """

    def __init__(self, api: Api, *, dry_run: bool = False) -> None:
        self._api = api
        self._dry_run = dry_run

    def apply_file(self, path: Path) -> Iterator[Outcome]:
        try:
            documents = load_file(path)
        except FileError as exc:
            where = f"{path}:{exc.line}" if exc.line is not None else str(path)
            yield Outcome(Result.FAILED, where, error=exc.reason)
            return
        for document in documents:
            yield self.apply_document(document)

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
        response = self._api.request("PUT", path, params=params, body=document.body)
        written = response.json()
        if response.status_code == 201:
            result = Result.WOULD_CREATE if self._dry_run else Result.CREATED
        elif written.get("changed") is False:
            result = Result.UNCHANGED
        else:
            result = Result.WOULD_UPDATE if self._dry_run else Result.UPDATED
        return Outcome(result, document.where, ref, written.get("version"))
