"""Card search rules without servers: keys, query keys, ranking, where a card matched."""

from __future__ import annotations

from boards.api.search import CardQuery
from boards.domain.search import card_keys, comment_stems, query_keys, rank, where_matched
from boards.web.table import TEXT

CARD = {"_id": "c1", "number": "SD-7", "title": "Принтеры не печатают",
        "requester": {"email": "Olga@North.example", "name": "Ольга", "organisation": "Север"},
        "fields": {"floor": 3, "rooms": ["Café Zürich"]},
        "search_comments": comment_stems("The toner was replaced")}


def test_a_card_is_found_by_stems_prefixes_and_whole_identifiers():
    keys = set(card_keys(CARD))
    for q in ("ПРИНТЕР", "принтеров", "печать", "sd-7", "olga@north.example", "север",
              "cafe zurich", "toners", "replac", "3"):
        wanted = query_keys(q)
        assert wanted and set(wanted) <= keys, q
    assert not set(query_keys("scanner")) <= keys
    assert query_keys("  ") == [] and query_keys("the of") == []


def test_rank_puts_title_matches_first_and_keeps_order_for_ties():
    note_only = {"_id": "a", "title": "Laptop", "search_comments": ["vpn"]}
    in_title = {"_id": "b", "title": "VPN drops daily"}
    other = {"_id": "c", "title": "Mouse", "search_comments": ["vpn"]}
    assert [r.card_id for r in rank("vpn", [note_only, in_title, other])] == ["b", "a", "c"]


def test_where_matched_names_the_place_and_marks_the_word():
    comments = [{"request_id": "r1", "visibility": "public", "text": "Принтер на 3 этаже",
                 "author": {"name": "Ольга"}},
                {"visibility": "internal", "text": "toner ordered", "author": {"name": "Ann"}}]
    found = where_matched("принтер", CARD, comments)
    assert [m["where"] for m in found] == ["title", "description"]
    assert [s["text"] for s in found[0]["snippet"] if s["mark"]] == ["Принтеры"]
    assert where_matched("toner", CARD, comments)[0]["where"] == "note"
    assert where_matched("zurich", CARD, [])[0] == {
        "where": "field", "label": "rooms",
        "snippet": [{"text": "Café ", "mark": False}, {"text": "Zürich", "mark": True}]}


def test_table_query_drops_and_names_bad_values_and_round_trips_as_a_link():
    q = CardQuery.parse({"board": "ops", "priority": "urgent", "sort": "-number", "q": "vpn",
                         "status": "done"})
    assert q.errors == {"priority": "one of low, medium, high, critical"}
    assert q.priority is None
    assert CardQuery.parse(dict(p.split("=") for p in q.link().split("&"))) == q.__class__(
        board="ops", q="vpn", status="done", sort="-number")
    assert CardQuery.parse({"q": "x"}).sort == "relevance"
    assert CardQuery.parse({}).sort == "-created"


def test_table_texts_exist_in_both_languages():
    assert set(TEXT["en"]) == set(TEXT["ru"])
    assert all(v.strip() for lang in TEXT.values() for v in lang.values())


def test_a_capped_page_says_so_in_the_pages_language():
    from boards.api.search import Found
    from boards.web.table import _note, texts

    capped = Found([], None, note="capped")
    assert "500" in _note(capped, CardQuery.parse({"q": "vpn"}), texts("ru"))
    sorted_note = _note(capped, CardQuery.parse({"sort": "-priority"}), texts("en"))
    assert "2000" in sorted_note and "Priority" in sorted_note
    assert _note(Found([], None), CardQuery.parse({}), texts("en")) is None
