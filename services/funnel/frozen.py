"""The funnel's state models are frozen pydantic models, copied with changes on every event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """The base of the funnel's state models: immutable, and cheap to copy with changes."""

    # extra="ignore": a state written by a newer version stays readable by an older one.
    model_config = ConfigDict(frozen=True, extra="ignore")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """``BaseModel.model_copy``, with a shallow copy that costs a dict copy: pydantic's
        copies each of the instance's four slots through ``copy.copy`` first, a sixth of
        the funnel's pure core when every event copies the state three times or more.
        Like pydantic's, it does not validate ``update``; the models have no extra fields
        (ignored) and no private attributes, so the dict is the whole instance."""
        if deep or not update:
            return super().model_copy(update=update, deep=deep)
        values = self.__dict__.copy()
        values.update(update)
        copied = self.__class__.__new__(self.__class__)
        _set = object.__setattr__  # frozen: BaseModel.__setattr__ refuses
        _set(copied, "__dict__", values)
        fields_set = self.__pydantic_fields_set__
        # Shared, not copied, once it holds every updated field (a state read back from
        # JSON has them all): building the union cost a fifth of the copy. Safe: a frozen
        # model never adds to it, and pydantic's own copy copies it before changing it.
        if not fields_set.issuperset(update):
            fields_set = fields_set | update.keys()
        _set(copied, "__pydantic_fields_set__", fields_set)
        _set(copied, "__pydantic_extra__", None)
        _set(copied, "__pydantic_private__", None)
        return copied
