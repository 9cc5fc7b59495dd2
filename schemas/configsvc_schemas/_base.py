"""What every built-in kind shares: the base model, secret fields and field-pinned errors."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from configsvc_schemas.wire import SECRET_MARK


class KindModel(BaseModel):
    """Base of every kind and of the models inside it.

    Fields the model does not know are ignored, so an older SDK reads a newer document; the
    service validates with `extra="forbid"` so that a typo is refused at write time.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def secret_field(description: str) -> Any:
    """A field whose value is masked for readers without the `secrets` permission."""
    return Field(
        default=None, description=description, json_schema_extra={SECRET_MARK: True}, repr=False
    )


PositiveSeconds = Annotated[float, Field(gt=0, description="seconds, > 0")]


def field_error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error pinned to the field at `loc` (relative to the model being checked).

    Raised from a model validator, it keeps the field path, so that a cross-field rule is
    reported at the field that breaks it (`["spec", "default"]`), not at the whole model.
    """
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=loc, input=value
    )
    return ValidationError.from_exception_data("spec", [detail])
