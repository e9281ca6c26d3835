"""Which language a customer wrote in: ISO 639-1 code or "unknown", offline and dependency-free.

Help-desk mail is short and mixed (product names, URLs, quoted English headers in a
Russian mail), so this favours honesty over coverage: the writing system decides for
scripts that belong to one language (Greek, Hebrew, Thai, Hangul, kana, ...); Cyrillic
and Arabic script are split by their distinctive letters; Latin-script text is scored by
its most frequent function words (and a few letters only one language uses). Whenever
the evidence is thin or two languages are close, the answer is "unknown" rather than a
guess that would make the desk answer in the wrong language.
"""

from __future__ import annotations

import re
import unicodedata

UNKNOWN = "unknown"

# Function words: what every sentence of the language contains, whatever its topic.
_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are was were to of in it that this for on with you not have has be my me "
        "we our your can could please from at but as an do does don't i i'm there will would "
        "what when after since thanks thank hello hi any no it's doesn't cannot can't".split()),
    "de": frozenset(
        "der die das und ist nicht ich sie es ein eine einen einem mit auf für den dem zu von "
        "im wir mein meine meinen bitte kann können wird sind auch noch seit wenn aber oder "
        "uns haben hat danke hallo geht funktioniert keine kein mehr beim zum zur bei wie "
        "sehr".split()),
    "fr": frozenset(
        "le la les et est une des du je vous nous pas que qui pour dans avec sur ce cette mon "
        "ma mes ne il elle au aux merci bonjour depuis fonctionne plus peux pouvez j'ai c'est "
        "n'est ai suis mais ou très".split()),
    "es": frozenset(
        "el la los las y es un una que de en no por para con mi se lo del al está están pero "
        "como desde hola gracias funciona puede tengo hay muy mis favor también ya".split()),
    "it": frozenset(
        "il lo la gli le e è un una che di non per con mi sono del della nel nella ma come "
        "anche ho ciao grazie funziona può questo questa da si dal alla più".split()),
    "pt": frozenset(
        "o a os as e é um uma que de não por para com meu minha se do da no na mas como está "
        "olá obrigado obrigada funciona pode tenho já você em ao dos das também".split()),
    "nl": frozenset(
        "de het een en is niet ik je van met op voor dat die er wij we mijn maar ook kan kunt "
        "werkt geen nog sinds hallo bedankt alstublieft graag heb zijn naar wordt".split()),
    "pl": frozenset(
        "i w z na nie się jest to że do co jak ale mój moja mam dla od po czy już tak dzień "
        "dobry dziękuję proszę działa może jestem są mi mnie przez".split()),
}

# Letters that (among the languages above) one language alone uses.
_OWN_LETTERS: dict[str, str] = {
    "de": "äöüß", "es": "ñ¿¡", "pt": "ãõ", "pl": "ąćęłńśźż", "fr": "œêèëîôûÿ", "it": "ìò",
}

_URLS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+", re.I)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def _script(ch: str) -> str | None:
    """The writing system of one letter (None for digits, punctuation, symbols)."""
    o = ord(ch)
    if not ch.isalpha():
        return None
    if o < 0x250 or 0x1E00 <= o <= 0x1EFF:
        return "latin"
    if 0x400 <= o <= 0x52F:
        return "cyrillic"
    if 0x370 <= o <= 0x3FF or 0x1F00 <= o <= 0x1FFF:
        return "greek"
    if 0x590 <= o <= 0x5FF:
        return "hebrew"
    if 0x600 <= o <= 0x6FF or 0x750 <= o <= 0x77F or 0xFB50 <= o <= 0xFEFF:
        return "arabic"
    if 0x900 <= o <= 0x97F:
        return "devanagari"
    if 0xE00 <= o <= 0xE7F:
        return "thai"
    if 0x530 <= o <= 0x58F:
        return "armenian"
    if 0x10A0 <= o <= 0x10FF:
        return "georgian"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF:
        return "kana"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    return "other"


_ONE_LANGUAGE = {"greek": "el", "hebrew": "he", "devanagari": "hi", "thai": "th",
                 "armenian": "hy", "georgian": "ka", "hangul": "ko"}
# One ideograph or syllable block carries about as much as a short Latin word.
_WEIGHT = {"han": 3, "kana": 3, "hangul": 3}


def detect_language(text: str) -> str:
    """ISO 639-1 code of the language `text` is written in, or "unknown" when unsure."""
    text = unicodedata.normalize("NFC", _URLS.sub(" ", text or ""))[:20_000]
    counts: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    latin = counts.get("latin", 0)
    others = {s: n * _WEIGHT.get(s, 1) for s, n in counts.items() if s not in ("latin", "other")}
    if others:
        script, weight = max(others.items(), key=lambda item: item[1])
        # Non-Latin writers quote Latin product names, paths and error messages; a third
        # of the Latin text's size in their own script already says who is writing.
        if weight >= 6 and weight * 3 >= latin:
            return _non_latin(script, text, counts)
    if latin < 8:
        return UNKNOWN
    return _latin(text)


def _non_latin(script: str, text: str, counts: dict[str, int]) -> str:
    if script in _ONE_LANGUAGE:
        return _ONE_LANGUAGE[script]
    if script in ("han", "kana"):
        # Japanese mixes kanji with kana; Chinese has no kana at all.
        return "ja" if counts.get("kana", 0) * 10 >= counts.get("han", 0) else "zh"
    if script == "cyrillic":
        return _cyrillic(text.lower())
    if script == "arabic":
        if re.search("[ٹڈڑںےھ]", text):
            return "ur"
        if re.search("[پچژگکی]", text):
            return "fa"
        return "ar"
    return UNKNOWN


def _cyrillic(text: str) -> str:
    if re.search("[ђјљњћџ]", text):
        return "sr"
    if re.search("[ѓќѕ]", text):
        return "mk"
    if "ў" in text:
        return "be"
    has_ru = bool(re.search("[ыэё]", text))
    if re.search("[їєґ]", text) or ("і" in text and not has_ru):
        return "uk"
    if not has_ru and re.search(r"\b(?:на|да|се|от|за|са|ще|този|това)\b", text) \
            and "ъ" in text:
        return "bg"
    return "ru"


def _latin(text: str) -> str:
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    words = [w for w in words if _script(w[0]) == "latin"]
    if len(words) < 3:
        return UNKNOWN
    scores: dict[str, float] = {}
    for lang, stop in _STOP_WORDS.items():
        score = float(sum(w in stop for w in words))
        own = _OWN_LETTERS.get(lang, "")
        score += 0.5 * sum(any(c in own for c in w) for w in words)
        scores[lang] = score
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    # Thin or contested evidence is "unknown": answering a German customer in Dutch is
    # worse than answering in the service's own language.
    if top < 2 or top < 1.5 * second or top < 0.12 * len(words):
        return UNKNOWN
    return best
