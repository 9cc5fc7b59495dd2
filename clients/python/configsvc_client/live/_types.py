"""What the live helpers read: anything with a `.value` that is the latest typed value."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class LiveValue(Protocol[T_co]):
    """A live view of one document, such as the SDK's `Binding`.

    `value` is the latest good typed value, or None while there is none (not yet
    received, or the document was deleted). The helpers read it at the start of every
    use, so a new value takes effect on the next call with no restart.
    """

    @property
    def value(self) -> T_co | None: ...


class Fixed(Generic[T]):
    """A `LiveValue` that never changes: for scripts and tests with no service."""

    __slots__ = ("_value",)

    def __init__(self, value: T | None) -> None:
        self._value = value

    @property
    def value(self) -> T | None:
        """The value given at construction."""
        return self._value

    def __repr__(self) -> str:
        return f"Fixed({self._value!r})"
