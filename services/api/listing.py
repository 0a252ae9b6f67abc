"""What a listing request asks for, validated at the edge (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.events import STAGE_ORDER
from services.api.cursors import cursor_moment, cursor_number, cursor_text, decode_cursor
from services.api.errors import BadRequest
from services.api.models import AccountFields

STAGES = tuple(stage.value for stage in STAGE_ORDER)
MAX_PAGE = 500
DOMAIN_LENGTH = 253


class Sort(StrEnum):
    DOMAIN = "domain"
    FIT = "fit_score"
    FIT_DESCENDING = "-fit_score"
    UPDATED = "updated_at"
    UPDATED_DESCENDING = "-updated_at"


SORTS = tuple(sort.value for sort in Sort)
FIELDS = tuple(AccountFields.model_fields)


@dataclass(frozen=True, slots=True)
class AccountFilter:
    stage: str | None = None
    tier: int | None = None
    surging: bool | None = None
    topic: str | None = None
    fit_min: float | None = None
    fit_max: float | None = None
    owner: str | None = None
    changed_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Order by ``column`` (descending when ``descending``) then domain; resume after."""

    column: str
    descending: bool
    after: tuple[Any, str] | None

    @property
    def sort(self) -> str:
        return ("-" if self.descending else "") + self.column


def account_filter(**given: Any) -> AccountFilter:
    criteria = AccountFilter(**given)
    if criteria.stage is not None and criteria.stage not in STAGES:
        raise BadRequest(
            f"unknown stage {criteria.stage!r}; one of {', '.join(STAGES)}", field="stage"
        )
    if None not in (criteria.fit_min, criteria.fit_max) and criteria.fit_min > criteria.fit_max:  # type: ignore[operator]
        raise BadRequest("fit_min is above fit_max", field="fit_min")
    return criteria


def keyset(sort: str, cursor: str | None) -> Keyset:
    if sort not in SORTS:
        raise BadRequest(f"unknown sort {sort!r}; one of {', '.join(SORTS)}", field="sort")
    position = decode_cursor(cursor, kind=f"accounts:{sort}")
    after = None
    if position is not None:
        domain = cursor_text(position.get("d"), max_length=DOMAIN_LENGTH)
        after = (_cursor_value(sort, position.get("v")), domain)
    return Keyset(column=sort.lstrip("-"), descending=sort.startswith("-"), after=after)


def selected_fields(fields: str | None) -> set[str] | None:
    """``None``: every field. The domain is always included: it names the account."""
    if fields is None:
        return None
    wanted = {name.strip() for name in fields.split(",") if name.strip()}
    unknown = wanted - set(FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown fields {sorted(unknown)}; from {', '.join(FIELDS)}", field="fields"
        )
    return wanted | {"domain"}


def _cursor_value(sort: str, value: Any) -> Any:
    """The sort column's value the page resumes after, of that column's type."""
    column = sort.lstrip("-")
    if column == "updated_at":
        return cursor_moment(value)
    if column == "fit_score":
        return cursor_number(value)
    return cursor_text(value, max_length=DOMAIN_LENGTH)
