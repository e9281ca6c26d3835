"""The scripted month through the real bus into boards: every figure, exactly, via the API."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import quote, urlencode

import httpx
import pytest
from pymongo import MongoClient

from tests.stats import scenario
from tests.stats.conftest import envelope, new_ids
from tests.support.stack import wait_until


def close_to(actual, expected) -> bool:
    """Equal, with floats compared to 1e-9 relative (percentiles interpolate)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            close_to(actual[k], v) for k, v in expected.items())
    if isinstance(expected, float) and actual is not None:
        return actual == pytest.approx(expected)
    return actual == expected


def summary(desk, **params) -> dict:
    r = desk.get("/v1/stats/summary", **params)
    assert r.status_code == 200, r.text
    return r.json()


def flow(desk, **params) -> dict:
    r = desk.get("/v1/stats/flow", **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_headline_figures_of_the_month(desk):
    s = summary(desk)
    for key, value in scenario.EXPECTED_SUMMARY.items():
        assert close_to(s[key], value), (key, s[key])
    csat = s["csat"]
    for key, value in scenario.EXPECTED_CSAT.items():
        assert close_to(csat[key], value), (key, csat[key])
    assert [(c["number"], c["rating"], c["comment"]) for c in csat["comments"]] == \
        scenario.EXPECTED_COMMENTS


def test_first_response_uses_business_time_not_wall_clock(desk):
    # SD-2 was answered 4 wall-clock hours after it arrived, 1 business hour in its calendar.
    rows = list(csv.DictReader(io.StringIO(desk.get("/v1/stats/export/targets.csv").text)))
    sd2 = next(r for r in rows if r["number"] == "SD-2" and r["target"] == "first_response")
    assert (sd2["spent_business_seconds"], sd2["elapsed_seconds"]) == ("3600", "14400")
    s = summary(desk, service="access")
    # access: SD-1 1800, SD-2 3600, SD-5 600, SD-6 1200 business seconds
    assert close_to(s["first_response"], {"count": 4, "median": 1500.0, "p90": 3060.0,
                                          "mean": 1800.0})


def test_flow_figures_of_the_month(desk):
    f = flow(desk)
    assert [p["open"] for p in f["backlog"]] == scenario.expected_backlog()
    assert f["backlog"][0]["at"] == "2026-11-02T00:00:00+00:00"
    cfd = {p["at"][:10]: p for p in f["cumulative_flow"]}
    assert {k: cfd["2026-11-27"][k] for k in scenario.COLUMNS.values()} == {
        "queued": 1, "in_progress": 1, "waiting_for_customer": 0, "done": 5}
    assert cfd["2026-11-06"]["waiting_for_customer"] == 1  # SD-2 waiting on 5 Nov
    assert cfd["2026-11-06"]["in_progress"] == 1 and cfd["2026-11-06"]["done"] == 1
    cycle = f["cycle_time"]
    assert {p["number"]: p["seconds"] for p in cycle["points"]} == scenario.EXPECTED_CYCLE
    assert close_to(cycle["percentiles"], scenario.EXPECTED_CYCLE_PERCENTILES)
    assert f["throughput"] == scenario.EXPECTED_THROUGHPUT
    cards = {c["number"]: c["columns"] for c in f["time_in_column"]["cards"]}
    assert "SD-50" not in cards and "SD-51" not in cards  # done before the month
    assert cards["SD-2"] == scenario.EXPECTED_SD2_COLUMNS
    columns = f["time_in_column"]["columns"]
    assert columns["new"]["mean"] == scenario.EXPECTED_NEW_COLUMN_MEAN
    assert columns["waiting"] == {"count": 1, "median": 86400.0, "p90": 86400.0,
                                  "mean": 86400.0, "total": 86400.0,
                                  "category": "waiting_for_customer"}


def test_figures_per_service_agent_channel_lane_and_account(desk):
    s = summary(desk, group_by="service")
    groups = {g["key"]: g for g in s["groups"]}
    assert (groups["access"]["received"], groups["access"]["closed"]) == (4, 3)
    assert (groups["hardware"]["received"], groups["hardware"]["closed"]) == (2, 2)
    assert groups["hardware"]["sla"]["first_response"]["breached"] == 2
    agents = {g["key"]: g for g in summary(desk, group_by="agent")["groups"]}
    assert set(agents) == {"alice", "bob", None}
    assert agents["alice"]["first_response"]["median"] == 1800.0  # 1800, 7200, 1200
    assert agents["bob"]["csat"]["average"] == 3.0  # SD-2 → 2, SD-5 → 4
    assert summary(desk, channel="email")["received"] == 4
    assert summary(desk, lane="expedite")["closed"] == 1
    assert summary(desk, agent="none")["received"] == 1
    assert summary(desk, account="acme")["received"] == 6
    assert summary(desk, account="someone-else")["received"] == 0


def test_period_boundaries(desk):
    first_week = summary(desk, **{"from": "2026-11-02", "to": "2026-11-08"})
    assert (first_week["received"], first_week["closed"]) == (2, 2)  # SD-1, SD-2
    assert first_week["reopen"] == {"closed": 2, "reopened": 2, "rate": 1.0}
    r = desk.http.get("/v1/stats/summary", params={"from": "2026-11-30", "to": "2026-11-01"})
    assert r.status_code == 422
    r = desk.http.get("/v1/stats/summary", params={"from": "yesterday"})
    assert r.status_code == 422 and "yesterday" in r.json()["message"]


def test_csv_export_rows_and_formula_injection(desk):
    r = desk.get("/v1/stats/export/cards.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    by_number = {row["number"]: row for row in rows}
    assert set(by_number) == {"SD-100", "SD-1", "SD-2", "SD-3", "SD-4", "SD-5", "SD-6"}
    assert by_number["SD-2"]["resolution_business_seconds"] == "30000"
    assert by_number["SD-2"]["reopened"] == "True"
    assert by_number["SD-1"]["reopened"] == "True"  # follow-up SD-6
    assert by_number["SD-2"]["rating"] == "2"
    # a customer's comment must not run as a spreadsheet formula
    assert by_number["SD-5"]["rating_comment"].startswith("'=HYPERLINK")
    cols = list(csv.DictReader(io.StringIO(desk.get("/v1/stats/export/columns.csv").text)))
    sd2 = [c for c in cols if c["number"] == "SD-2"]
    assert [c["column"] for c in sd2] == ["new", "doing", "waiting", "doing", "done", "doing",
                                          "done"]
    ratings = list(csv.DictReader(io.StringIO(desk.get("/v1/stats/export/ratings.csv").text)))
    assert [(x["number"], x["rating"], x["latest"]) for x in ratings if x["number"] == "SD-2"] \
        == [("SD-2", "4", "False"), ("SD-2", "2", "True")]
    assert desk.get("/v1/stats/export/secrets.csv").status_code == 422


def metric_samples(desk) -> dict[str, float]:
    text = desk.http.get("/metrics").text
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(desk_stats_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_prometheus_metrics(desk):
    m = wait_until(lambda: (s := metric_samples(desk)) and s.get(
        'desk_stats_open_requests{category="queued",service="hardware"}') == 1.0 and s)
    assert m['desk_stats_open_requests{category="in_progress",service="access"}'] == 1.0
    assert m.get('desk_stats_open_requests{category="in_progress",service="hardware"}',
                 0.0) == 0.0
    assert m['desk_stats_first_response_seconds_count{service="access"}'] == 4
    assert m['desk_stats_first_response_seconds_sum{service="access"}'] == 7200
    assert m['desk_stats_first_response_seconds_count{service="hardware"}'] == 2
    assert m['desk_stats_resolution_seconds_count{service="access"}'] == 4  # SD-2 twice
    assert m['desk_stats_sla_breaches_total{service="hardware",target="first_response"}'] == 2
    assert m['desk_stats_sla_breaches_total{service="access",target="resolution"}'] == 1
    assert m['desk_stats_csat_rating_count{service="access"}'] == 4
    assert m['desk_stats_csat_rating_bucket{le="2.0",service="access"}'] == 1


def test_replaying_the_month_gives_the_same_figures(desk):
    before = (summary(desk), flow(desk), desk.get("/v1/stats/export/cards.csv").text,
              desk.get("/v1/stats/export/columns.csv").text)
    metrics_before = {k: v for k, v in metric_samples(desk).items()
                      if "open_requests" not in k and "lag" not in k
                      and "events_applied" not in k}
    # the whole stream again (redelivery), then every fact again under new event ids and in
    # reverse order (a producer re-emitting after a crash, a bus reordering)
    desk.publish(desk.envelopes)
    desk.publish(list(reversed(new_ids(desk.envelopes))))
    desk.settle()
    after = (summary(desk), flow(desk), desk.get("/v1/stats/export/cards.csv").text,
             desk.get("/v1/stats/export/columns.csv").text)
    assert after == before
    metrics_after = {k: v for k, v in metric_samples(desk).items() if k in metrics_before}
    assert metrics_after == metrics_before


def test_bad_event_is_dead_lettered_and_the_queue_keeps_flowing(desk):
    good = scenario.Card(999, "access", "api", "std", "12-20 10:00").events[0]
    bad = envelope(good).model_copy(update={"payload": {"card": {"x": 1}}})
    desk.publish([bad])
    desk.settle()
    text = desk.http.get("/metrics").text
    assert re.search(r'desk_bus_dead_lettered_total\{queue="[^"]*boards\.stats",'
                     r'reason="invalid payload",service="boards"\} 1\.0', text)


def test_statistics_need_an_agent_and_respect_board_membership(desk):
    url = desk.stack["boards"].url
    assert httpx.get(f"{url}/v1/stats/summary").status_code == 401
    assert httpx.get(f"{url}/v1/stats/summary",
                     headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{url}/v1/stats/export/cards.csv").status_code == 401
    r = desk.http.post("/v1/agents", json={"name": "Outsider", "boards": []})
    assert r.status_code == 201, r.text
    outsider = {"Authorization": f"Bearer {r.json()['token']}"}
    s = httpx.get(f"{url}/v1/stats/summary", params=scenario.PERIOD, headers=outsider).json()
    assert (s["received"], s["closed"], s["csat"]["comments"]) == (0, 0, [])
    # asking for the board explicitly does not widen what an agent sees
    s = httpx.get(f"{url}/v1/stats/summary", params={**scenario.PERIOD, "board": "support"},
                  headers=outsider).json()
    assert s["received"] == 0
    csv_text = httpx.get(f"{url}/v1/stats/export/cards.csv", params=scenario.PERIOD,
                         headers=outsider).text
    assert "SD-1" not in csv_text
    # the page: to the workspace sign-in without a session, the outsider's page is empty
    r = httpx.get(f"{url}/stats", params=scenario.PERIOD)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote(f"/stats?{urlencode(scenario.PERIOD)}")
    page = httpx.get(f"{url}/stats", params=scenario.PERIOD, headers=outsider)
    assert page.status_code == 200 and "SD-1" not in page.text and "<svg" in page.text
    r = desk.http.post("/v1/agents", json={"name": "Member", "boards": ["support"]})
    member = {"Authorization": f"Bearer {r.json()['token']}"}
    s = httpx.get(f"{url}/v1/stats/summary", params=scenario.PERIOD, headers=member).json()
    assert s["received"] == 6


def test_read_model_rebuilds_from_a_replay(desk, mongo_url):
    """Drop the statistics' own collections and consumer records, replay: same figures."""
    before = (summary(desk), flow(desk), desk.get("/v1/stats/export/cards.csv").text)
    client = MongoClient(mongo_url)
    try:
        db = client[f"{desk.stack.namespace}_boards"]
        for name in db.list_collection_names():
            if name.startswith("stats_"):
                db.drop_collection(name)
        db["processed_events"].delete_many({"_id": {"$regex": r"^boards\.stats:"}})
    finally:
        client.close()
    assert summary(desk)["received"] == 0
    desk.publish(desk.envelopes)
    desk.settle()
    after = (summary(desk), flow(desk), desk.get("/v1/stats/export/cards.csv").text)
    assert after == before
