"""Article bodies: Markdown to safe HTML, and to plain text for search snippets.

markdown-it-py with raw HTML off (a `<script>` in a body is shown as text, never run),
and an explicit allowlist of link targets: http(s), mailto and our own paths. Anything
else (`javascript:`, `data:`, `vbscript:`, protocol-relative `//host`) is not a link at all.
Outgoing links get `rel="nofollow noopener noreferrer"`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt

SCHEMES = frozenset({"http", "https", "mailto"})


def safe_link(url: str) -> bool:
    """Is this a link target we render? (http(s)/mailto, or a path/anchor of this site)."""
    url = url.strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url) or "\\" in url:
        return False
    if url.startswith("#") or (url.startswith("/") and not url.startswith("//")):
        return True
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        return False
    return parts.scheme.lower() == "mailto" or bool(parts.hostname)


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(self, tokens, idx, options, env):  # noqa: ANN001 (markdown-it's signature)
        token = tokens[idx]
        href = token.attrGet("href") or ""
        if not href.startswith(("/", "#")):
            token.attrSet("rel", "nofollow noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _renderer()


def render(body: str) -> str:
    """The body as HTML that is safe to put in a page as it is."""
    return _MD.render(body)


def plain_text(body: str) -> str:
    """The body's words without Markdown syntax (for snippets and highlights)."""
    parts: list[str] = []
    for token in _MD.parse(body):
        if token.type == "inline" and token.children:
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
            parts.append("\n")
        elif token.type in ("code_block", "fence"):
            parts.append(token.content + "\n")
    return "".join(parts).strip()
