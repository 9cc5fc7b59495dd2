"""Binding: a live, typed view of one document."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from configsvc_schemas import BUILTIN_KINDS
from configsvc_schemas.wire import split_key
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError, model_validator

from configsvc_client._types import Document

log = logging.getLogger("configsvc_client")

M = TypeVar("M", bound=BaseModel)

ValueCallback = Callable[[M | None, M | None], object]
"""Called with (old, new) typed values; old is None for the first, new is None on delete."""


class DocumentRejected(ValueError):
    """A document failed local validation against a bound model."""


class SpecMapping(RootModel[dict[str, Any]], Mapping[str, Any]):
    """A document's spec as a read-only mapping (what `client.bind(key)` gives with no model).

    Nested objects are read-only mappings and arrays are tuples, so a value shared with every
    reader of the binding cannot be changed by one of them. Any kind is accepted.
    """

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _freeze(self) -> SpecMapping:
        object.__setattr__(self, "root", _frozen(self.root))
        return self

    def __getitem__(self, key: str) -> Any:
        return self.root[key]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # keys, as a mapping's
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def kind_of(model: type[BaseModel]) -> str | None:
    """The built-in kind `model` is (or extends), or None for any other model."""
    for name, kind in BUILTIN_KINDS.items():
        if issubclass(model, kind):
            return name
    return None


def describe_errors(exc: ValidationError) -> str:
    """Field paths and messages of a validation error, never the offending values."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in ("spec", *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class Binding(Generic[M]):
    """The latest good value of document `key`, parsed as `model`.

    Guarantees: `value` only ever holds a version that validated against `model`
    (None before the first, and after a delete); a version that fails is not applied
    and `error` says why; callbacks see every applied version once, in order.
    Reading `value` is safe from any thread.
    """

    __slots__ = ("_callbacks", "_document", "_error", "_expected_kind", "_value", "key", "model")

    def __init__(self, key: str, model: type[M]) -> None:
        split_key(key)
        self.key = key
        self.model = model
        self._expected_kind = kind_of(model)
        self._value: M | None = None
        self._document: Document | None = None
        self._error: str | None = None
        self._callbacks: list[ValueCallback[M]] = []

    @property
    def value(self) -> M | None:
        """The latest version that passed validation, or None (none yet, or deleted)."""
        return self._value

    @property
    def document(self) -> Document | None:
        """Metadata and raw spec of the version in `value` (version, revision, updated_at...)."""
        return self._document

    @property
    def error(self) -> str | None:
        """Why the newest version was rejected locally, or None once a good one applies."""
        return self._error

    def on_change(self, callback: ValueCallback[M]) -> ValueCallback[M]:
        """Call `callback(old, new)` for each applied version; usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    def __repr__(self) -> str:
        version = self._document.version if self._document else None
        return f"Binding({self.key!r}, {self.model.__name__}, version={version})"

    def _validate(self, document: Document) -> M:
        if self._expected_kind is not None and document.kind != self._expected_kind:
            raise DocumentRejected(
                f"kind is {document.kind!r}, the binding expects {self._expected_kind!r}"
            )
        spec = document.spec if isinstance(document.spec, dict) else dict(document.spec)
        try:
            return self.model.model_validate(spec)
        except ValidationError as exc:
            raise DocumentRejected(describe_errors(exc)) from None
        except Exception as exc:  # a user model's own check (e.g. model_post_init)
            raise DocumentRejected(f"{type(exc).__name__}: {exc}") from None

    def _set(self, value: M | None, document: Document | None) -> M | None:
        old, self._value, self._document, self._error = self._value, value, document, None
        return old

    def _refresh(self, document: Document) -> None:
        """The held version again (newer revision): keep the value, clear an error."""
        if self._document is not None:
            self._document, self._error = document, None

    def _notify(self, old: M | None, value: M | None) -> None:
        for callback in list(self._callbacks):
            try:
                callback(old, value)
            except Exception:
                log.exception("on_change callback of %s failed", self.key)

    def _reject(self, message: str | None) -> None:
        self._error = message
