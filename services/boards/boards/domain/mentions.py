"""Who a note names: `@handle` or `@Display Name` (ru/en, any case) resolved to agents.

An agent is named by their handle (the agent id: `@anna.k`), by their display name
(`@Анна Петрова`, `@anna petrova`) or, when no other agent of the board shares it, by the
first word of it (`@Анна`). The longest name that fits wins, so `@Анна Петрова` is not
taken for `@Анна`. A name nobody on the board has, or one two agents share, is left as
text; an e-mail address (`boss@desk.example`) is no mention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Mention:
    start: int  # where `@` is in the note
    end: int  # just after the name
    agent_id: str

    def as_document(self) -> dict:
        return {"start": self.start, "end": self.end, "agent_id": self.agent_id}


def _continues_word(char: str) -> bool:
    return char.isalnum() or char in "_-@"


def _names(agents: Iterable[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """(name as written, agent id) for every unambiguous name, longest first."""
    full: dict[str, set[str]] = {}
    first: dict[str, set[str]] = {}
    written: dict[str, str] = {}
    for agent_id, name in agents:
        for value, into in ((agent_id, full), (" ".join((name or "").split()), full)):
            if value:
                into.setdefault(value.casefold(), set()).add(agent_id)
                written.setdefault(value.casefold(), value)
        words = (name or "").split()
        if len(words) > 1:
            first.setdefault(words[0].casefold(), set()).add(agent_id)
            written.setdefault(words[0].casefold(), words[0])
    for key, ids in first.items():
        if key not in full:  # a handle or a whole name wins over another's first word
            full[key] = ids
    found = [(written[key], next(iter(ids))) for key, ids in full.items() if len(ids) == 1]
    return sorted(found, key=lambda x: -len(x[0]))


def find_mentions(text: str, agents: Iterable[tuple[str, str | None]]) -> list[Mention]:
    """Each `@name` in `text` that names one of `agents` ((id, display name) pairs)."""
    if "@" not in (text or ""):
        return []
    names = _names(agents)
    found: list[Mention] = []
    at = text.find("@")
    while at != -1:
        after = at + 1
        before = text[at - 1] if at else ""
        if not (before and (_continues_word(before) or before == ".")):
            rest = text[at + 1:]
            for written, agent_id in names:
                n = len(written)
                if rest[:n].casefold() == written.casefold() and not (
                        n < len(rest) and _continues_word(rest[n])):
                    found.append(Mention(at, at + 1 + n, agent_id))
                    after = at + 1 + n
                    break
        at = text.find("@", after)
    return found


def mentioned_agents(mentions: Sequence[Mention]) -> list[str]:
    """Agent ids named, once each, in the order first named."""
    return list(dict.fromkeys(m.agent_id for m in mentions))


def mention_segments(text: str, mentions: Iterable[dict]) -> list[tuple[str, str | None]]:
    """A note split into plain text and mentions (agent id), for showing it highlighted."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in sorted(mentions or (), key=lambda m: m["start"]):
        start, end = int(m["start"]), int(m["end"])
        if start < pos or end > len(text) or text[start:start + 1] != "@":
            continue  # not where it was found (the text changed): shown as plain text
        if start > pos:
            out.append((text[pos:start], None))
        out.append((text[start:end], m["agent_id"]))
        pos = end
    if pos < len(text) or not out:
        out.append((text[pos:], None))
    return out
