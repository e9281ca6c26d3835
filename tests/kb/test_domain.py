"""The knowledge base's pure rules: text analysis, ranking, article checks, visibility, and
the Markdown renderer that must keep every script out of a body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from boards.kb import markdown, search
from boards.kb.domain import Article, ArticleInvalid, Draft, audiences, reader_audiences

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_analysis_folds_case_yo_and_accents_and_stems_both_languages():
    assert search.analyse("ПРИНТЕРЫ") == search.analyse("принтер")
    assert search.analyse("Ёлка") == search.analyse("елки")
    assert search.analyse("Café résumé") == search.analyse("cafe resume")
    assert search.analyse("resetting passwords") == search.analyse("reset password")
    # й keeps its mark: "мой" and "мои" stay different words
    assert search.fold("й") == "й"
    assert search.analyse("how do I reset it") == search.analyse("reset")  # stop words go


def test_prefix_keys_find_longer_words_and_rank_exact_above_prefix():
    docs = [{"_id": "exact", "weights": search.weights("Printer", "printer jam"), "language": "en"},
            {"_id": "longer", "weights": search.weights("Printers", "printerless office"),
             "language": "en"},
            {"_id": "other", "weights": search.weights("Mail", "mailbox full"), "language": "en"}]
    typed = search.Query.parse("prin")
    keys = set(typed.keys())
    assert all(keys & set(search.keys_of(d["weights"])) for d in docs[:2])
    assert not keys & set(search.keys_of(docs[2]["weights"]))
    hits = search.rank(search.Query.parse("printer"), docs)
    assert [h.article_id for h in hits][0] == "exact"
    assert "other" not in [h.article_id for h in hits]


def test_an_article_matching_more_words_ranks_first():
    docs = [{"_id": "one", "weights": search.weights("VPN", "vpn vpn vpn vpn"), "language": "en"},
            {"_id": "both", "weights": search.weights("VPN on a laptop", "laptop"),
             "language": "en"}]
    assert [h.article_id for h in search.rank(search.Query.parse("vpn laptop"), docs)] == \
        ["both", "one"]


def test_highlight_marks_found_words_only_as_segments():
    q = search.Query.parse("сбросить пароль")
    segs = search.highlight(q, "Как сбросить пароль от почты")
    assert [s["text"] for s in segs if s["mark"]] == ["сбросить", "пароль"]
    assert "".join(s["text"] for s in segs) == "Как сбросить пароль от почты"


def test_draft_reports_every_bad_field():
    with pytest.raises(ArticleInvalid) as err:
        Draft.parse({"title": "", "body": "x" * 100_001, "language": "de",
                     "categories": ["nope"], "visibility": "groups", "groups": [],
                     "status": "live"}, known_categories={"access"})
    assert set(err.value.errors) == {"title", "body", "language", "categories", "groups",
                                     "status"}
    assert "nope" in err.value.errors["categories"]


def test_who_reads_what():
    assert audiences("public", ()) == ["public"]
    assert audiences("groups", ("legal",)) == ["group:legal"]
    assert audiences("agents", ()) == ["agents"]
    assert reader_audiences(signed_in=False, groups=["legal"]) == ["public"]
    assert "agents" not in reader_audiences(signed_in=True, groups=["agents"])
    assert reader_audiences(signed_in=True, groups=["agents"]) == ["public", "group:agents"]


def test_versions_and_what_a_draft_publishes():
    draft = Draft.parse({"title": "T", "body": "B", "language": "en"}, set())
    a = Article.new(draft, by="ann", at=NOW)
    assert a.version == 1 and not a.published and a.document()["audience"] == []
    b = a.revise(Draft.parse({"title": "T2", "body": "B2", "language": "en",
                              "status": "published"}, set()), by="bob", at=NOW)
    assert (b.version, b.published, b.published_at, b.updated_by) == (2, True, NOW, "bob")
    assert b.document()["audience"] == ["public"]
    assert b.version_document()["_id"] == f"{a.id}:2"


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#115;cript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    "[x](//evil.example/path)",
])
def test_markdown_never_renders_script_or_unsafe_links(body):
    html = markdown.render(body)
    assert "<script" not in html and "<img src=x" not in html and "<svg" not in html
    assert 'href="javascript' not in html.lower() and 'src="javascript' not in html.lower()
    assert 'href="data:' not in html and 'href="vbscript' not in html
    assert 'href="//' not in html


def test_markdown_keeps_ordinary_formatting_and_safe_links():
    html = markdown.render("**Bold** and [docs](https://docs.example/a) and [ours](/help)")
    assert "<strong>Bold</strong>" in html
    assert '<a href="https://docs.example/a" rel="nofollow noopener noreferrer">docs</a>' in html
    assert '<a href="/help">ours</a>' in html
