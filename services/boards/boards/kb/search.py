"""Knowledge-base search, pure: words to stems, the store's lookup keys, ranking, highlights.

Both sides of a search go through `analyse`: lower-case, `ё` read as `е`, Snowball stems
(Russian for Cyrillic words, English for Latin ones), diacritics dropped after stemming
(so `café` finds `cafe`). An article keeps `weights` (stem → title hits × 3 + body hits)
and `keys`: each stem and its prefixes of 3 to 6 letters. A query word's key is its stem
(or the stem's first 6 letters), so one indexed equality lookup (`keys $in [...]`) finds
every article holding a word that starts with what was typed; `rank` then scores exact
stem matches above prefix matches, rarer words above common ones, and articles that match
more of the query's words above those that match fewer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

WORD = re.compile(r"\w+", re.UNICODE)
CYRILLIC = re.compile(r"[а-яё]")
PREFIX_MIN, PREFIX_MAX = 3, 6
TITLE_WEIGHT = 3
PREFIX_FACTOR = 0.5  # a word that only starts with what was typed counts half
MAX_QUERY_WORDS = 12

# Words that say nothing about the topic; dropping them keeps "how do I" from matching all.
STOP_WORDS = frozenset("""
a an and are as at be by can do does for from how i if in is it me my no not of on or our
so that the this to was we what when where which who why will with you your
а без в во вы да для до если же за и из или как ко ли мне мой мы на не нет но о об от по
при с со так то у что чтобы это я
""".split())

_STEMMERS = {"ru": snowballstemmer.stemmer("russian"), "en": snowballstemmer.stemmer("english")}


def fold(text: str) -> str:
    """Lower case, `ё` → `е`, combining marks (accents) removed."""
    text = text.casefold().replace("ё", "е")
    decomposed = unicodedata.normalize("NFKD", text)
    # й and ё are letters of their own in Russian: keep their marks out of the strip
    return unicodedata.normalize("NFC", "".join(
        c for c in decomposed if not unicodedata.combining(c) or c == "\u0306"))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One folded word's stem."""
    stemmer = _STEMMERS["ru" if CYRILLIC.search(word) else "en"]
    return fold(stemmer.stemWord(word))


def words(text: str) -> list[str]:
    """The folded words of a text, in order (stop words kept: highlights need them)."""
    return WORD.findall(fold(text))


def analyse(text: str) -> list[str]:
    """The stems of the words of a text that carry meaning."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS]


def weights(title: str, body: str) -> dict[str, int]:
    """Stem → weight: each title occurrence counts TITLE_WEIGHT, each body occurrence 1."""
    counts: Counter[str] = Counter()
    for s in analyse(title):
        counts[s] += TITLE_WEIGHT
    for s in analyse(body):
        counts[s] += 1
    return dict(counts)


def keys_of(stems: dict[str, int] | list[str]) -> list[str]:
    """The lookup keys an article is found by: each stem and its 3…6-letter prefixes."""
    keys: set[str] = set()
    for s in stems:
        keys.add(s)
        for n in range(PREFIX_MIN, min(len(s), PREFIX_MAX) + 1):
            keys.add(s[:n])
    return sorted(keys)


@dataclass(frozen=True)
class Query:
    """A search as typed: its distinct meaningful words and their stems."""

    text: str
    terms: tuple[tuple[str, str], ...]  # (folded word, stem)

    @classmethod
    def parse(cls, text: str) -> Query:
        seen: dict[str, str] = {}
        for w in words(text):
            if w in STOP_WORDS or w in seen:
                continue
            seen[w] = stem(w)
            if len(seen) == MAX_QUERY_WORDS:
                break
        return cls(text=text, terms=tuple(seen.items()))

    @property
    def empty(self) -> bool:
        return not self.terms

    def keys(self) -> list[str]:
        """What to look up: each word's stem, cut to the longest prefix an article keeps."""
        return sorted({s[:PREFIX_MAX] if len(s) > PREFIX_MAX else s for _, s in self.terms})


def _match(stems: dict[str, int], word: str, stem_: str) -> float:
    """How well an article's stems match one query word: its best stem's weight, full for
    the same stem, halved for a longer word that starts with what was typed."""
    exact = stems.get(stem_)
    if exact:
        return float(exact)
    best = 0.0
    for s, w in stems.items():
        if s.startswith(stem_) or s.startswith(word):
            best = max(best, w * PREFIX_FACTOR)
    return best


@dataclass(frozen=True)
class Hit:
    article_id: str
    matched: int  # how many of the query's words the article has
    score: float


def rank(query: Query, candidates: list[dict], *, language: str | None = None,
         limit: int = 20) -> list[Hit]:
    """Order candidates (`{"_id", "weights", "language"}`) best first; drops non-matches.

    Rarer words weigh more (idf over the candidates); each word's weight saturates
    (`w / (w + 1.2)`), so one word repeated does not outrank two words present; the
    viewer's language breaks near-ties.
    """
    if query.empty:
        return []
    per_doc: list[tuple[dict, list[float]]] = []
    df = [0] * len(query.terms)
    for doc in candidates:
        stems = doc.get("weights") or {}
        found = [_match(stems, w, s) for w, s in query.terms]
        if not any(found):
            continue
        for i, f in enumerate(found):
            if f:
                df[i] += 1
        per_doc.append((doc, found))
    n = len(per_doc)
    idf = [math.log(1 + (n + 1) / (d + 0.5)) for d in df]
    hits = []
    for doc, found in per_doc:
        score = sum(idf[i] * f / (f + 1.2) for i, f in enumerate(found) if f)
        if language and doc.get("language") == language:
            score *= 1.05
        hits.append(Hit(doc["_id"], sum(1 for f in found if f), score))
    hits.sort(key=lambda h: (-h.matched, -h.score, h.article_id))
    return hits[:limit]


# --- highlights -------------------------------------------------------------------------

def _marks_word(query: Query, raw: str) -> bool:
    folded = fold(raw)
    s = stem(folded)
    return any(s == qs or folded.startswith(qw) or s.startswith(qs)
               for qw, qs in query.terms)


def highlight(query: Query, text: str) -> list[dict]:
    """The text as segments `{"text", "mark"}`, the words the query found marked.

    Segments, not HTML: whoever shows them escapes the text (an article's words are
    never markup)."""
    out: list[dict] = []
    pos = 0
    for m in WORD.finditer(text):
        if m.group(0).casefold() in STOP_WORDS or not _marks_word(query, m.group(0)):
            continue
        if m.start() > pos:
            out.append({"text": text[pos:m.start()], "mark": False})
        out.append({"text": m.group(0), "mark": True})
        pos = m.end()
    if pos < len(text):
        out.append({"text": text[pos:], "mark": False})
    return _merge(out)


def _merge(segments: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for seg in segments:
        if merged and merged[-1]["mark"] == seg["mark"]:
            merged[-1] = {"text": merged[-1]["text"] + seg["text"], "mark": seg["mark"]}
        else:
            merged.append(seg)
    return merged


def snippet(query: Query, text: str, width: int = 220) -> list[dict]:
    """A window of the text around its first found word, highlighted (`…` where cut)."""
    text = " ".join(text.split())
    start = 0
    for m in WORD.finditer(text):
        if m.group(0).casefold() not in STOP_WORDS and _marks_word(query, m.group(0)):
            start = max(0, m.start() - width // 4)
            break
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start:start + width]
    end = start + width < len(text)
    if end:
        cut = piece.rfind(" ")
        piece = piece[:cut] if cut > width // 2 else piece
    segments = highlight(query, piece)
    if start:
        segments.insert(0, {"text": "… ", "mark": False})
    if end:
        segments.append({"text": " …", "mark": False})
    return _merge(segments)
