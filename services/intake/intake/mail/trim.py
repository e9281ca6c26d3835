"""Cuts quoted history and signatures from a reply, so a comment holds only what is new.

Covers the attribution lines and separators of Gmail, Outlook (English and Russian),
Thunderbird, Apple Mail and mobile clients, `>`-quoted blocks and the `-- ` signature
delimiter. Only replies are trimmed: a new request (often a forward) keeps its text.
"""

from __future__ import annotations

import re

_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,200}:\s*$", re.I),
    re.compile(r"^.{0,300}\b(пишет|написал|написала|писал|писала)\s*:\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(Original Message|Исходное сообщение|Пересылаемое сообщение)"
               r"\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*-{5,}\s*Reply above this line\s*-{5,}", re.I),
]
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|От|Von|De)\s*:\*?\s+\S", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Date|Отправлено|Дата|Gesendet|Envoyé|To|Кому)\s*:", re.I)
_SEPARATOR = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE = re.compile(r"^(--|-- |__)\s*$")
_MOBILE = re.compile(r"^\s*(Sent from my \w+|Sent from (Mail|Outlook) for \w+|Get Outlook for \w+|"
                     r"Отправлено (с|из) .{1,40}|Sent from Yandex.Mail.*)\s*$", re.I)
_SIGNOFF = re.compile(r"^\s*(best regards|kind regards|regards|thanks|thank you|cheers|"
                      r"с уважением|спасибо|всего доброго|с наилучшими пожеланиями)[,.!]?\s*$",
                      re.I)


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        joined = line + " " + lines[i + 1] if i + 1 < len(lines) else line
        if any(p.match(line) for p in _ATTRIBUTION):
            return i
        # Gmail wraps long attributions: "On Mon, 3 Mar 2025 at 10:00, Name <\na@b> wrote:"
        if line.strip().lower().startswith("on ") and _ATTRIBUTION[0].match(joined):
            return i
        if _SEPARATOR.match(line) and i + 1 < len(lines) and _OUTLOOK_FROM.match(
                lines[i + 1]):
            return i
        if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1:i + 4]):
            return i
    return None


def trim_reply(text: str) -> str:
    lines = text.split("\n")
    start = _quote_start(lines)
    if start is not None:
        lines = lines[:start]
    # a quoted block at the end (bottom- or top-posting without attribution)
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line) or _MOBILE.match(line):
            lines = lines[:i]
            break
    # a sign-off near the end starts the signature ("С уважением,\nИван")
    for i in range(max(0, len(lines) - 6), len(lines)):
        if i > 0 and _SIGNOFF.match(lines[i]):
            lines = lines[:i]
            break
    result = "\n".join(lines).strip()
    return result or text.strip()


def strip_signature(text: str) -> str:
    """For new requests: only the unambiguous `-- ` delimiter ends the text."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "-- " or line == "--":
            result = "\n".join(lines[:i]).strip()
            return result or text.strip()
    return text.strip()
