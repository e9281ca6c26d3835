"""Blocked time and closed-by-type on the statistics page, from cards on a real boards process.

A board "ops" defines its own card types (name and colour). A scripted September of typed
and blocked cards goes over the real bus with known times, so the page's figures are exact;
cards made through the card API today check the same figures as they happen.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from desk_contracts.events import CardSnapshot, CardUpdated
from playwright.sync_api import expect

from tests.stats import scenario
from tests.stats.conftest import envelope
from tests.support.browser import chromium
from tests.support.stack import wait_until

pytestmark = [pytest.mark.slow]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

SEPTEMBER = {"from": "2026-09-01", "to": "2026-09-30"}
OPS_BOARD = {
    "name": "Operations",
    "columns": [{"id": "todo", "name": "To do", "category": "queued"},
                {"id": "doing", "name": "Doing", "category": "in_progress"},
                {"id": "done", "name": "Done", "category": "done"}],
    "lanes": [{"id": "main", "name": "Main"}],
    "card_types": [
        {"id": "incident", "name": {"en": "Incident", "ru": "Инцидент"}, "color": "#d32f2f"},
        {"id": "chore", "name": {"en": "Chore", "ru": "Рутина"}, "color": "#00897b"},
    ],
}


class TypedCard(scenario.Card):
    """A scripted card of a given board and type that a blocker can hold."""

    def __init__(self, n: int, created: str, card_type: str | None, board: str = "ops"):
        self.card_type, self.board, self.blocked = card_type, board, False
        super().__init__(n, "hardware", "email", "main", created)

    def snap(self, when: datetime) -> CardSnapshot:
        extra = {"board_id": self.board, "blocked": self.blocked}
        if self.card_type:
            extra["card_type"] = self.card_type
        return super().snap(when).model_copy(update=extra)

    def set_blocked(self, blocked: bool, when: str) -> TypedCard:
        self.version += 1
        self.blocked = blocked
        self.events.append(CardUpdated(card=self.snap(scenario.at(when)),
                                       changed=("blockers",)))
        return self


def september() -> list[TypedCard]:
    # SD-901: blocked 3 h, then closed; SD-902: closed, never blocked; SD-903: blocked from
    # 09-29 00:00 to the period's end (48 h) and still blocked; SD-904: a card from before
    # types (board "support"), blocked across the period's start (6 h inside it), closed.
    c901 = (TypedCard(901, "09-07 09:00", "incident").set_blocked(True, "09-07 10:00")
            .set_blocked(False, "09-07 13:00"))
    c901.move("done", "09-08 09:00")
    c902 = TypedCard(902, "09-14 09:00", "incident")
    c902.move("done", "09-14 12:00")
    c903 = TypedCard(903, "09-21 09:00", "chore").set_blocked(True, "09-29 00:00")
    c904 = (TypedCard(904, "08-31 10:00", None, board="support")
            .set_blocked(True, "08-31 12:00").set_blocked(False, "09-01 06:00"))
    c904.move("done", "09-03 10:00")
    return [c901, c902, c903, c904]


@pytest.fixture(scope="module")
def ops(desk):
    """The ops board with its card types, and the scripted September taken in."""
    r = desk.http.put("/v1/boards/ops", json=OPS_BOARD)
    assert r.status_code == 200, r.text
    desk.publish([envelope(e) for card in september() for e in card.events])
    desk.settle()
    return desk


def page(desk, **params) -> str:
    r = desk.http.get("/stats", params=params)
    assert r.status_code == 200, r.text
    return r.text


class _TextOf(HTMLParser):
    """The text inside the element with a given id (nested elements included)."""

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id, self.depth, self.parts = element_id, 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth or dict(attrs).get("id") == self.element_id:
            self.depth += 1
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            self.parts.append(" ")

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def cell_text(html: str, element_id: str) -> str:
    parser = _TextOf(element_id)
    parser.feed(html)
    text = " ".join("".join(parser.parts).split())
    assert text, element_id
    return text


def table_rows(html: str, table_id: str) -> list[list[str]]:
    m = re.search(rf'<table id="{table_id}"[^>]*>(.*?)</table>', html, re.S)
    assert m, table_id
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split())
             for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)] for row in rows]


def test_the_page_shows_the_blocked_time_the_api_counts(ops):
    api = ops.http.get("/v1/stats/summary", params=SEPTEMBER).json()
    # 3 h (SD-901) + 48 h (SD-903) + 6 h (SD-904) inside September
    assert api["blocked"] == {"count": 3, "median": 21600.0, "p90": 142560.0,
                              "mean": 68400.0, "total_seconds": 205200.0, "blocked_at_end": 1}
    html = page(ops, **SEPTEMBER)
    assert cell_text(html, "tile-blocked").startswith("Blocked time 2d 9h in total · n=3")
    assert cell_text(html, "blocked-per-card") == (
        "per blocked card: median 6h 00m · p90 1d 15h · mean 19h 00m")
    # September is over: the count is of cards blocked when it ended
    assert cell_text(html, "blocked-now") == "blocked at the period's end: 1"
    assert table_rows(html, "blocked") == [
        ["Card", "Blocked in the period", "Still blocked"],
        ["SD-903", "2d 0h", "yes"], ["SD-904", "6h 00m", "no"], ["SD-901", "3h 00m", "no"]]
    # a filter narrows them like every other figure: SD-904 is on another board
    html = page(ops, board="ops", **SEPTEMBER)
    assert cell_text(html, "tile-blocked").startswith("Blocked time 2d 3h in total · n=2")
    assert [r[0] for r in table_rows(html, "blocked")[1:]] == ["SD-903", "SD-901"]


def test_closed_by_type_with_the_boards_names_and_colours(ops):
    html = page(ops, **SEPTEMBER)
    assert table_rows(html, "by-type") == [["Type", "Closed", "share of closed"],
                                          ["Incident", "2", "66.7%"],
                                          ["Request", "1", "33.3%"]]
    # each type's colour as the board defines it (a card from before types: "request")
    assert re.search(r'<tr data-type="incident"><td><span class="swatch" '
                     r'style="background:#d32f2f" aria-hidden="true">', html)
    assert re.search(r'<tr data-type="request"><td><span class="swatch" '
                     r'style="background:#1565c0"', html)
    ru = page(ops, lang="ru", **SEPTEMBER)
    assert table_rows(ru, "by-type")[:2] == [["Тип", "Закрыто", "доля закрытых"],
                                              ["Инцидент", "2", "66.7%"]]
    assert cell_text(ru, "tile-blocked").startswith("Время в блокировке 2д 9ч всего")
    assert cell_text(ru, "blocked-now") == "заблокировано на конец периода: 1"
    # grouped by type, each group by the type's name
    grouped = table_rows(page(ops, group_by="type", **SEPTEMBER), "groups")
    by_name = {row[0]: row for row in grouped[1:]}
    assert set(by_name) == {"Incident", "Chore", "Request"}
    assert by_name["Incident"][2] == "2" and by_name["Chore"][-1] == "2d 0h"


def test_the_csv_export_carries_type_and_blocked_time(ops):
    r = ops.http.get("/stats/export/cards.csv", params=SEPTEMBER)
    rows = {row["number"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert {n: (rows[n]["card_type"], rows[n]["blocked_seconds"], rows[n]["blocked_at_end"])
            for n in ("SD-901", "SD-902", "SD-903", "SD-904")} == {
        "SD-901": ("incident", "10800", "False"), "SD-902": ("incident", "0", "False"),
        "SD-903": ("chore", "172800", "True"), "SD-904": ("request", "21600", "False")}


def test_cards_worked_through_the_api_today(ops):
    """Real cards: made, blocked and closed through the card API, counted as it happens."""
    http = ops.http

    def task(title: str, card_type: str) -> dict:
        r = http.post("/v1/tasks", json={"board_id": "ops", "title": title, "type": card_type})
        assert r.status_code == 201, r.text
        return r.json()

    fixed = task("Disk full on db-2", "incident")
    stuck = task("Rotate certificates", "chore")
    r = http.post(f"/v1/cards/{stuck['id']}/blockers", json={"reason": "waiting for the CA"})
    assert r.status_code == 201, r.text
    r = http.post(f"/v1/cards/{fixed['id']}/move",
                  json={"column_id": "done", "version": fixed["version"]})
    assert r.status_code == 200, r.text
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    period = {"from": start.date().isoformat(),
              "to": (today + timedelta(days=1)).isoformat(), "board": "ops"}

    def counted() -> dict | None:
        # the new incident closed; blocked now: the new chore and September's SD-903
        s = http.get("/v1/stats/summary", params=period).json()
        done = s["closed_by_type"] == {"incident": 1} and s["blocked"]["blocked_at_end"] == 2
        return s if done else None

    summary = wait_until(counted, timeout=60, interval=0.3)
    html = page(ops, **period)
    elapsed = (datetime.now(UTC) - start).total_seconds()
    assert table_rows(html, "by-type")[1] == ["Incident", "1", "100.0%"]
    # the period runs into tomorrow: a card still blocked counts until now, not until
    # the period's end, and the count is of cards blocked now
    assert summary["blocked"]["total_seconds"] <= 2 * elapsed
    assert cell_text(html, "blocked-now") == "blocked now: 2"
    rows = {r[0]: r[1:] for r in table_rows(html, "blocked")[1:]}
    assert set(rows) == {"SD-903", stuck["number"]}
    assert rows["SD-903"][1] == rows[stuck["number"]][1] == "yes"
    assert re.fullmatch(r"\d+s|\d+m", rows[stuck["number"]][0]), rows


@pytest.mark.browser
def test_the_tables_are_found_by_their_names_and_read_by_keyboard(ops):
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="en-US",
                                      extra_http_headers={"Authorization": ops.http.headers[
                                          "Authorization"]})
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        url = ops.stack["boards"].url
        pg.goto(f"{url}/stats?{httpx.QueryParams(SEPTEMBER)}")
        by_type = pg.get_by_role("table", name="Closed by type")
        expect(by_type).to_be_visible()
        expect(by_type.get_by_role("row", name=re.compile("Incident"))).to_contain_text("2")
        blocked = pg.get_by_role("table", name="Blocked cards")
        expect(blocked.get_by_role("columnheader", name="Still blocked")).to_be_visible()
        expect(blocked.get_by_role("row", name=re.compile("SD-903"))).to_contain_text("yes")
        # the filters come first when tabbing, as everywhere on the page
        pg.keyboard.press("Tab")
        pg.keyboard.press("Tab")
        assert pg.evaluate("document.activeElement.name") == "from"
        swatch = by_type.locator("span.swatch").first
        assert swatch.get_attribute("aria-hidden") == "true"
        box = swatch.bounding_box()
        assert box and box["width"] >= 8
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / "stats-blocked.png"), full_page=True)
        context.close()
