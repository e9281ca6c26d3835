"""Which card an inbound mail belongs to: the threading decision, over lookups done before.

Layers, first match wins: a reply token in our address (`problem+<token>@...`), a
Message-ID in In-Reply-To/References we know, a `[SD-42]` number in the subject (only
for the card's participants). `clues_of()` says what to look up, the caller looks it up
(`Lookups`), and `choose_thread()` decides and says why (the `threading_reason`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from desk_contracts.reply_token import verify_reply_token

_SUBJECT_TOKEN = re.compile(r"\[([A-Za-z]{1,10}-\d{1,12})\]")


# the reason given for a valid reply token naming a card not in the thread map yet
UNKNOWN_CARD = "new:reply_token_card_not_known_yet"


@dataclass(frozen=True)
class Clues:
    # one entry per reply token, in order: the card number it names, None if forged/garbled
    token_numbers: tuple[str | None, ...]
    message_ids: tuple[str, ...]
    subject_numbers: tuple[str, ...]
    sender: str

    @property
    def numbers(self) -> set[str]:
        """Every card number worth looking up."""
        return {n.upper() for n in (*self.token_numbers, *self.subject_numbers) if n}


@dataclass(frozen=True)
class Lookups:
    by_number: Mapping[str, dict[str, Any]]  # upper-case number -> thread
    by_message_id: dict[str, Any] | None     # the thread one of `message_ids` belongs to


def clues_of(tokens: Iterable[str | None], secret: bytes, in_reply_to: Iterable[str],
          references: Iterable[str], subject: str, sender: str) -> Clues:
    return Clues(
        token_numbers=tuple(verify_reply_token(t, secret) for t in tokens if t),
        message_ids=tuple(i for i in (*in_reply_to, *references) if i),
        subject_numbers=tuple(_SUBJECT_TOKEN.findall(subject)),
        sender=sender)


def choose_thread(found: Clues, lookups: Lookups) -> tuple[dict[str, Any] | None, str]:
    """The thread the mail replies to (None: a new request) and the reason."""
    for number in found.token_numbers:
        thread = lookups.by_number.get(number.upper()) if number else None
        if thread is not None:
            return thread, "reply_token"
    if found.message_ids and lookups.by_message_id is not None:
        return lookups.by_message_id, "references"
    for number in found.subject_numbers:
        thread = lookups.by_number.get(number.upper())
        if thread is None:
            continue
        if found.sender in thread.get("participants", []):
            return thread, "subject_token"
        return None, f"new:subject_token_not_participant ({number.upper()})"
    if None in found.token_numbers:
        return None, "new:invalid_reply_token"
    known = [n.upper() for n in found.token_numbers if n]
    if known:
        # our own signed token names a card this intake has not heard of yet: the card
        # exists (only notify, after the card, mints tokens), its card.created is still on
        # its way here (a replica that died with it, a busy consumer) — wait for it
        return None, f"{UNKNOWN_CARD} ({known[0]})"
    if found.message_ids:
        return None, "new:unknown_references"
    return None, "new"
