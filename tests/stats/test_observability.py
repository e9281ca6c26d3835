"""The Grafana dashboard and the alert rules only use metrics the code defines."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
# a metric name, not a part of a recording rule's name (level:desk_metric:operations)
METRIC = re.compile(r"(?<![\w:])desk_[a-z_]+(?![\w:])")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                               "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}


def registered() -> set[str]:
    """Every series name the services' metric modules can expose."""
    for module in ("desk_runtime.metrics", "boards.metrics", "boards.stats.metrics",
                   "sla.metrics", "intake.metrics", "notify.metrics"):
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def exprs_of_dashboard(dash: dict) -> list[str]:
    out = []
    for panel in dash["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        out.append(q["query"] if isinstance(q, dict) else str(q or ""))
    return out


def test_dashboard_queries_reference_only_existing_metrics():
    files = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
    assert files
    known = registered()
    for path in files:
        dash = json.loads(path.read_text())
        exprs = exprs_of_dashboard(dash)
        used = {m for e in exprs for m in METRIC.findall(e)}
        assert used, path
        assert used <= known, f"{path.name}: unknown metrics {sorted(used - known)}"
        # the issue's figures are all on it
        for name in ("desk_stats_open_requests", "desk_stats_first_response_seconds_bucket",
                     "desk_stats_resolution_seconds_bucket", "desk_stats_sla_breaches_total",
                     "desk_stats_csat_rating_sum", "desk_bus_dead_lettered_total",
                     "desk_outbox_lag_seconds", "desk_bus_consumer_lag_seconds"):
            assert name in used, name
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids))


def test_unknown_metric_would_be_caught():
    assert "desk_stats_made_up_total" not in registered()


def test_alert_rules_are_valid_and_cover_the_issue():
    doc = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}
    recorded = {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"]
                if "record" in r}

    def expanded(expr: str) -> str:
        """The expression with the recording rules it reads written out."""
        for name, body in recorded.items():
            if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr):
                expr += " " + expanded(body)
        return expr
    for name in ("DeskSlaBreachRate", "DeskDeadLetteredMessages", "DeskOutboxLag",
                 "DeskConsumerLag"):
        assert name in rules, name
    known = registered()
    for name, rule in rules.items():
        assert rule["expr"].strip() and rule["annotations"]["summary"], name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        used = set(METRIC.findall(expanded(rule["expr"])))
        assert used and used <= known, f"{name}: unknown {sorted(used - known)}"
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    assert "desk_stats_sla_breaches_total" in expanded(rules["DeskSlaBreachRate"]["expr"])
    assert "desk_bus_consumer_lag_seconds" in rules["DeskConsumerLag"]["expr"]
