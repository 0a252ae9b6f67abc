"""The buying committee: who the account's stakeholders are, their roles, who is engaged.

- **Stakeholders identified**: the account's known contacts (``AccountState.contacts``),
  at most ``MAX_CONTACTS``.
- **Engaged stakeholders**: those whose latest engagement (an engagement event naming
  them: an email click, reply or inbound email, a chat, a form, a meeting) lies within the
  engagement score's window: at most ``window - 1`` whole days before the clock's day.
- **Penetration**: engaged / identified (``None`` without stakeholders).
- **Role**: from ``contact_identified``: its ``role`` when that names a configured role,
  else the role whose title keywords match its ``title`` (or its free-text ``role``); the
  highest multiplier wins. A contact keeps the last role it was given; ``unknown`` else.

Only keys of addresses are kept (see ``state.contact_key``), never the addresses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from services.funnel.config import UNKNOWN_ROLE, EngagementConfig, FunnelConfig
from services.funnel.scores import Committee, committee_result, role_count
from services.funnel.state import MAX_CONTACTS, Contact, contact_key, days_between

_NOT_A_WORD = re.compile(r"[^0-9a-z]+")


def _words(text: str) -> str:
    """``text`` as lowercase words separated by single spaces, padded: " vp sales "."""
    return f" {' '.join(_NOT_A_WORD.split(text.casefold())).strip()} "


def resolve_role(role: str | None, title: str | None, config: EngagementConfig) -> str:
    """The configured role that ``role`` names or ``title`` suggests, else ``unknown``."""
    if role is not None:
        named = _words(role).strip().replace(" ", "_")
        if named in config.role_weights:
            return named
    for text in (title, role):
        if text is None:
            continue
        matched = _role_by_keywords(_words(text), config)
        if matched is not None:
            return matched
    return UNKNOWN_ROLE


def _role_by_keywords(words: str, config: EngagementConfig) -> str | None:
    matches = [
        role
        for role, keywords in config.title_keywords.items()
        if any(f" {_words(keyword).strip()} " in words for keyword in keywords)
    ]
    if not matches:
        return None
    return max(sorted(matches), key=lambda role: config.role_weights[role])


def role_weight(role: str, config: EngagementConfig) -> float:
    """The multiplier of ``role`` (1.0 when unknown or no longer configured)."""
    return config.role_weights.get(role, 1.0)


def with_contacts(
    contacts: dict[str, Contact],
    emails: Iterable[str],
    *,
    role: str | None = None,
    engaged_on: date | None = None,
) -> dict[str, Contact]:
    """``contacts`` with ``emails`` added (up to ``MAX_CONTACTS``), given ``role`` (when not
    ``None``) and engaged on ``engaged_on`` (when later than known); ``contacts`` itself
    when nothing changes, else a new mapping sorted by key."""
    merged = dict(contacts)
    changed = False
    for email in emails:
        key = contact_key(email)
        current = merged.get(key)
        if current is None:
            if len(merged) >= MAX_CONTACTS:
                continue
            current = merged[key] = Contact()
            changed = True
        update = _contact_update(current, role, engaged_on)
        if update:
            merged[key] = current.model_copy(update=update)
            changed = True
    return dict(sorted(merged.items())) if changed else contacts


def _contact_update(
    contact: Contact, role: str | None, engaged_on: date | None
) -> dict[str, object]:
    update: dict[str, object] = {}
    if role is not None and role != contact.role:
        update["role"] = role
    if engaged_on is not None and (contact.engaged_on is None or engaged_on > contact.engaged_on):
        update["engaged_on"] = engaged_on
    return update


def strongest_role(
    contacts: dict[str, Contact], emails: list[str], config: EngagementConfig
) -> str:
    """The role with the highest multiplier among the known contacts of ``emails``."""
    if not emails:
        return UNKNOWN_ROLE
    roles = {contacts[key].role for key in map(contact_key, emails) if key in contacts}
    if not roles:
        return UNKNOWN_ROLE
    return max(sorted(roles), key=lambda role: role_weight(role, config))


def committee(contacts: dict[str, Contact], today: date, config: FunnelConfig) -> Committee:
    """The buying committee of these ``contacts`` at day ``today`` (see the docstring)."""
    window = config.engagement_score_window_days
    counts: dict[str, list[int]] = {}
    engaged_total = 0
    for contact in contacts.values():
        engaged = (
            contact.engaged_on is not None and 0 <= days_between(contact.engaged_on, today) < window
        )
        tally = counts.setdefault(contact.role, [0, 0])
        tally[0] += 1
        tally[1] += int(engaged)
        engaged_total += int(engaged)
    identified = len(contacts)
    return committee_result(
        identified,
        engaged_total,
        round(engaged_total / identified, 4) if identified else None,
        {role: role_count(i, e) for role, (i, e) in sorted(counts.items())},
    )
