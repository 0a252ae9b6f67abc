"""State records: frozen pydantic dataclasses, copied with changes on every event.

The consumers' per-key states (the funnel's accounts, intent's series) are read field by
field on every event. ``BaseModel`` defines ``__getattr__`` (for private attributes and
extra fields), and a class with one in its MRO gets CPython's generic attribute hook, which
CPython 3.11 never specialises: every ``state.clock`` takes the slow path. In the funnel's
pure core that was 13% of the instructions (``make instructions``). A pydantic dataclass
validates and serialises as a model does and reads its attributes as a plain class does.

``Frozen`` gives the records the part of ``BaseModel``'s API the consumers use, under the
same names and with the same meaning, so that a record reads as a model does:
``model_copy``, ``model_dump``, ``model_dump_json``, ``model_validate``,
``model_validate_json``. Declare each record with
``@pydantic.dataclasses.dataclass(frozen=True, config=...)`` on a ``Frozen`` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import ConfigDict
from pydantic.fields import FieldInfo
from pydantic_core import SchemaSerializer, SchemaValidator

# extra="ignore": a state written by a newer version stays readable by an older one.
RECORD_CONFIG = ConfigDict(extra="ignore")


class Frozen:
    """The base of a state record (see the module docstring)."""

    __pydantic_validator__: ClassVar[SchemaValidator]
    __pydantic_serializer__: ClassVar[SchemaSerializer]
    __pydantic_fields__: ClassVar[dict[str, FieldInfo]]

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with ``update``'s fields changed, at the cost of one dict copy. Like
        ``BaseModel.model_copy`` it does not validate ``update``: the rules build values
        of the fields' types. Pydantic's own copy costs four ``copy.copy`` calls. As
        with pydantic's, a ``cached_property`` is copied too: copy no record that has one
        with changes to what it was computed from."""
        values = self.__dict__.copy()
        if update:
            values.update(update)
        copied = object.__new__(type(self))
        object.__setattr__(copied, "__dict__", values)  # frozen: the dataclass's refuses
        return copied

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """The record as Python data (``mode="json"`` for JSON-ready values)."""
        dumped: dict[str, Any] = self.__pydantic_serializer__.to_python(self, **options)
        return dumped

    def model_dump_json(self, **options: Any) -> str:
        return self.__pydantic_serializer__.to_json(self, **options).decode()

    @classmethod
    def model_validate(cls, document: Any) -> Self:
        """The record from Python data (a dict, as read from JSON), validated."""
        validated: Self = cls.__pydantic_validator__.validate_python(document)
        return validated

    @classmethod
    def model_validate_json(cls, document: str | bytes) -> Self:
        validated: Self = cls.__pydantic_validator__.validate_json(document)
        return validated

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The record's fields, in declaration order (``model_fields``' keys)."""
        return tuple(cls.__pydantic_fields__)
