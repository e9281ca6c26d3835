"""Full-text search over cards, pure: the words a card is found by, ranking, where it matched.

Words go through the knowledge base's analyser (`boards.kb.search`: lower case, `ё` as
`е`, ru/en Snowball stems, accents dropped) so `принтеры` finds `принтер` and `Printers`
finds `printer`. A card keeps its lookup keys in `text_keys` (one multikey field with
its own list index, so the list walk, its filters and cursors work unchanged): each stem
and its 3…6-letter prefixes, plus the card number and the requester's e-mail whole.
(`search_terms`, the whole words the board's and the list API's `q=` match, stay as
they were: those searches keep their meaning.)
Comments (the description, public replies, internal notes) add their stems to
`search_comments` on the card as they are written; card search is an agents' API, so
internal notes are searched too (customers never reach it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class _Analyser:
    """`boards.kb.search`, imported on first use: the kb package's own start-up imports
    boards' repositories, which import this module (a cycle at import time only)."""

    def __getattr__(self, name: str) -> Any:
        from boards.kb import search

        return getattr(search, name)


text = _Analyser()

# A change to any of these changes what the card is found by.
TEXT_SOURCES = frozenset({"title", "number", "requester", "fields"})
TITLE_WEIGHT = 3
REQUESTER_WEIGHT = 2
SNIPPET_WIDTH = 160
_WHOLE = (re.compile(r"[a-z]+-\d+"), re.compile(r"[^@\s]+@[^@\s]+"))


def _field_text(value: Any) -> str:
    """A custom field's answer as words (lists and numbers too; nested records skipped)."""
    if isinstance(value, (list, tuple)):
        return " ".join(_field_text(v) for v in value)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _requester_text(requester: Mapping[str, Any] | None) -> str:
    r = requester or {}
    return " ".join(str(r.get(k) or "") for k in ("name", "email", "organisation"))


def card_weights(card: Mapping[str, Any]) -> Counter[str]:
    """Stem → weight over the card's own words and the comments' stems it keeps."""
    counts: Counter[str] = Counter()
    for s in text.analyse(card.get("title") or ""):
        counts[s] += TITLE_WEIGHT
    for s in text.analyse(f"{card.get('number') or ''} {_requester_text(card.get('requester'))}"):
        counts[s] += REQUESTER_WEIGHT
    for value in (card.get("fields") or {}).values():
        for s in text.analyse(_field_text(value)):
            counts[s] += 1
    counts.update(card.get("search_comments") or ())
    return counts


def card_keys(card: Mapping[str, Any]) -> list[str]:
    """What a card is found by: stems and their prefixes, the number and e-mail whole."""
    keys = set(text.keys_of(list(card_weights(card))))
    requester = card.get("requester") or {}
    for whole in (card.get("number"), requester.get("email")):
        if whole:
            keys.add(str(whole).lower())
    return sorted(keys)


def comment_stems(body: str | None) -> list[str]:
    """A comment's distinct stems (each comment counts once per word for ranking)."""
    return sorted(set(text.analyse(body or "")))


def query_keys(q: str) -> list[str]:
    """The keys a search box entry looks up, all of which a card must have; a card
    number or an e-mail is kept whole."""
    q = q.strip().lower()
    if not q:
        return []
    if any(p.fullmatch(q) for p in _WHOLE):
        return [q]
    return text.Query.parse(q).keys()


@dataclass(frozen=True)
class Ranked:
    card_id: str
    score: float


def rank(q: str, cards: Iterable[Mapping[str, Any]]) -> list[Ranked]:
    """Candidates (card documents that have every key) best first: the knowledge base's
    ranking over each card's weights; ties newest first."""
    query = text.Query.parse(q)
    docs = list(cards)
    if query.empty:
        return [Ranked(d["_id"], 0.0) for d in docs]
    order = {d["_id"]: i for i, d in enumerate(docs)}
    hits = text.rank(query, [{"_id": d["_id"], "weights": card_weights(d)} for d in docs],
                     limit=len(docs))
    found = {h.article_id: h for h in hits}
    # a number or e-mail searched whole has no stems to score: keep the walk's order
    out = [Ranked(d["_id"], found[d["_id"]].score if d["_id"] in found else 0.0) for d in docs]
    out.sort(key=lambda r: (-r.score, order[r.card_id]))
    return out


def where_matched(q: str, card: Mapping[str, Any], comments: Iterable[Mapping[str, Any]],
                  *, limit: int = 3) -> list[dict[str, Any]]:
    """Where the words were found, best places first: `{"where", "label", "snippet"}`.

    `where` is title, requester, field, description (the request's own text), reply
    (a public comment) or note (an internal one); the snippet is highlighted segments
    (`{"text", "mark"}`) for the page to escape."""
    query = text.Query.parse(q)
    if query.empty:
        return []
    places: list[tuple[str, str | None, str]] = [("title", None, card.get("title") or ""),
                                                 ("requester", None,
                                                  _requester_text(card.get("requester")))]
    places += [("field", key, _field_text(v)) for key, v in (card.get("fields") or {}).items()]
    for c in comments:
        where = ("description" if c.get("request_id") else
                 "note" if c.get("visibility") == "internal" else "reply")
        places.append((where, (c.get("author") or {}).get("name"), c.get("text") or ""))
    found = []
    for where, label, body in places:
        segments = text.snippet(query, body, SNIPPET_WIDTH)
        if any(s["mark"] for s in segments):
            found.append({"where": where, "label": label, "snippet": segments})
            if len(found) == limit:
                break
    return found
