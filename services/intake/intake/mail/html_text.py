"""HTML mail → clean plain text, with the standard library's tokenizer (nothing is executed).

Scripts, styles and the head are dropped; blocks become lines, lists get bullets, links
keep their target, and quoted parts (`<blockquote>`, Gmail's `gmail_quote`, Thunderbird's
`moz-cite-prefix`, Outlook's `divRplyFwdMsg`) come out `> `-prefixed so the reply trimmer
treats them like quoted plain text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}
_BLOCK = {"p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol",
          "h1", "h2", "h3", "h4", "h5", "h6", "pre", "address", "blockquote", "hr", "form",
          "dl", "dt", "dd", "center", "main", "nav", "aside", "figure", "li"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source",
         "track", "wbr", "param"}
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote")
_QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.quote_depth = 0
        self.stack: list[tuple[str, bool]] = []  # (tag, opened a quote)
        self.pre = 0
        self.href: list[str | None] = []

    def _flush(self) -> None:
        text = "".join(self.current)
        if not self.pre:
            text = re.sub(r"[ \t\r\n\f\u00a0]+", " ", text).strip()
        prefix = "> " * self.quote_depth
        for line in text.split("\n") if self.pre else [text]:
            if line or self.pre:
                self.lines.append(prefix + line)
        self.current = []

    def _break(self, blank: bool = False) -> None:
        if self.current:
            self._flush()
        if blank and self.lines and self.lines[-1].strip("> ") != "":
            self.lines.append("> " * self.quote_depth)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        quote = tag == "blockquote" or any(
            c in a.get("class", "").lower() for c in _QUOTE_CLASSES
        ) or a.get("id", "").lower() in _QUOTE_IDS
        if tag in _BLOCK or quote or tag == "br":
            self._break(blank=tag in ("p", "table", "blockquote", "h1", "h2", "h3"))
        if tag == "hr":
            self.lines.append("> " * self.quote_depth + "________________________________")
        if tag == "li":
            self.current.append("- ")
        if tag in ("td", "th") and self.current:
            self.current.append("  ")
        if tag == "pre":
            self.pre += 1
        if tag == "a":
            self.href.append(a.get("href"))
        if tag == "img" and a.get("alt"):
            self.current.append(f"[{a['alt']}]")
        if tag not in _VOID:
            self.stack.append((tag, quote))
            if quote:
                self.quote_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.handle_starttag(tag, attrs)
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth or tag in _VOID:
            return
        # pop to the matching open tag (HTML mail is rarely well-formed)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                closing = self.stack[i:]
                del self.stack[i:]
                break
        else:
            return
        if tag == "a":
            href = self.href.pop() if self.href else None
            text = "".join(self.current).rsplit(" ", 1)[-1]
            if href and href.startswith(("http://", "https://")) and href not in text:
                self.current.append(f" ({href})")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK or any(q for _, q in closing):
            self._break()
        for _, opened_quote in closing:
            if opened_quote:
                self.quote_depth = max(0, self.quote_depth - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data)


def html_to_text(html: str) -> str:
    conv = _Converter()
    conv.feed(html)
    conv.close()
    conv._break()
    text = "\n".join(line.rstrip() for line in conv.lines)
    text = re.sub(r"\n(?:>?\s*\n){2,}", "\n\n", text)
    return text.strip()
