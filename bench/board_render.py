"""The agent's board with N cards: navigation to interactive in headless Chromium vs the raw API.

    python bench/board_render.py [--cards 500] [--runs 15]

Starts a fresh SecantusDB (as tests/support/infra.py does) and the boards service as a real
process (tests/support/stack.py) on the local RabbitMQ, files N cards through the agents'
API (spread over columns and lanes, some moved), signs a browser session in, then loads
`/board/support` `--runs` times in headless Chromium (a fresh tab each time, the browser
cache warm as an agent's would be) and reports, per run:

- **interactive**: `performance.now()` when the board script has drawn every card and bound
  drag-and-drop, the keyboard menu and live updates (`window.__boardReadyAt`), measured from
  the navigation's start;
- navigation timing: `responseEnd` (the HTML with the embedded cards has arrived) and
  `domContentLoadedEventEnd`;
- and, on the same run, fetching the same cards as JSON alone from `GET /v1/cards`
  (200 a page, following `next_cursor`) and the HTML page alone, with httpx.

p50/p99 of each. The issue's bar: 500 cards interactive in under a second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support.infra import mongo_server, rabbitmq_server  # noqa: E402
from tests.support.stack import Stack, cleanup  # noqa: E402

COLUMNS = ["queue", "in-progress", "clarification", "pause"]
LANES = ["l1", "l2", "legal"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    return (f"{name:<44} p50 {pct(values, 50):7.1f} ms   p99 {pct(values, 99):7.1f} ms   "
            f"mean {statistics.fmean(values):7.1f} ms")


def load_cards(base: str, headers: dict, n: int) -> None:
    priorities = ["low", "medium", "high", "critical"]

    def one(i: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            r = c.post("/v1/cards", json={
                "service_id": "problem", "title": f"Bench request {i}: printer on floor {i % 9}",
                "text": "Filed by the benchmark.", "priority": priorities[i % 4],
                "requester": {"email": f"user{i}@acme.example", "name": f"User {i}"},
                "fields": {"system": "mail"}})
            r.raise_for_status()
            card = r.json()
            column, lane = COLUMNS[i % 4], LANES[(i // 4) % 3]
            if (column, lane) != ("queue", "l1"):
                c.post(f"/v1/cards/{card['id']}/move", json={
                    "column_id": column, "lane_id": lane, "version": card["version"]}
                ).raise_for_status()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(n)))


def api_fetch_all(base: str, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    count, cursor = 0, None
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        while True:
            params = {"board": "support", "limit": 200} | ({"cursor": cursor} if cursor else {})
            body = c.get("/v1/cards", params=params).json()
            count += len(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
    return (time.perf_counter() - started) * 1000, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with mongo_server() as mongo_url, rabbitmq_server() as amqp_url:
        stack = Stack(mongo_url, amqp_url, Path(tempfile.mkdtemp(prefix="bench-board-")))
        stack.start(("boards",))
        try:
            run(stack, args)
        finally:
            stack.stop()
            cleanup(mongo_url, amqp_url, stack.namespace)


def run(stack: Stack, args) -> None:
    base = stack["boards"].url
    headers = {"Authorization": f"Bearer {stack.ADMIN_TOKEN}"}
    board = httpx.get(f"{base}/v1/boards/support", headers=headers).json()
    for column in board["columns"]:
        column["wip_limit"] = None  # the demo's "in progress" holds 10; the bench spreads 500
    httpx.put(f"{base}/v1/boards/support", headers=headers, json={
        k: board[k] for k in ("name", "space", "columns", "lanes")}).raise_for_status()
    t0 = time.perf_counter()
    load_cards(base, headers, args.cards)
    print(f"loaded {args.cards} cards through the API in {time.perf_counter() - t0:.1f} s")

    interactive, response_end, dcl, api_ms, html_ms, drawn = [], [], [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        r = context.request.post(f"{base}/v1/session", data={"token": stack.ADMIN_TOKEN})
        assert r.ok, r.text()
        cookie = {c["name"]: c["value"] for c in context.cookies()}
        for i in range(args.runs + 1):
            page = context.new_page()
            page.goto(f"{base}/board/support", wait_until="domcontentloaded")
            page.wait_for_function("window.__boardReadyAt !== undefined")
            timing = page.evaluate("""() => {
                const n = performance.getEntriesByType('navigation')[0];
                return {ready: window.__boardReadyAt, responseEnd: n.responseEnd,
                        dcl: n.domContentLoadedEventEnd,
                        tiles: document.querySelectorAll('.tile').length};
            }""")
            page.close()
            ms, count = api_fetch_all(base, headers)
            started = time.perf_counter()
            httpx.get(f"{base}/board/support", cookies=cookie, timeout=30).raise_for_status()
            page_ms = (time.perf_counter() - started) * 1000
            if i == 0:
                continue  # the first run warms the browser cache (app.js, app.css)
            interactive.append(timing["ready"])
            response_end.append(timing["responseEnd"])
            dcl.append(timing["dcl"])
            drawn.append(timing["tiles"])
            api_ms.append(ms)
            html_ms.append(page_ms)
        browser.close()

    print(f"board 'support': {count} cards via the API, {drawn[-1]} drawn on the page; "
          f"{args.runs} runs")
    print(line("browser: navigation -> interactive", interactive))
    print(line("browser: navigation -> HTML received", response_end))
    print(line("browser: navigation -> DOMContentLoaded", dcl))
    print(line("httpx: board HTML page alone (server render)", html_ms))
    print(line(f"httpx: same cards as API JSON alone ({-(-count // 200)} pages)", api_ms))
    verdict = "under" if pct(interactive, 99) < 1000 else "OVER"
    print(f"p99 navigation -> interactive is {verdict} 1 s")


if __name__ == "__main__":
    main()
