"""deploy/alerts.yml as Prometheus sees it: promtool checks the rules, runs their unit tests
(every alert firing and quiet), and the compose/`make run` configs load the same file."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import RULES, duration_ms, parse, scale_expr, scaled_rules

ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS = Path(__file__).with_name("alerts.test.yml")
ALL_UNIT_TESTS = sorted(Path(__file__).parent.glob("alerts*.test.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("promtool"), "promtool missing: `make system-deps` installs prometheus"
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def alerts() -> dict[str, list[dict]]:
    doc = yaml.safe_load(RULES.read_text())
    out: dict[str, list[dict]] = {}
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                out.setdefault(rule["alert"], []).append(rule)
    return out


def test_rules_pass_promtool_check():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rule_unit_tests_pass():
    done = promtool("test", "rules", *map(str, ALL_UNIT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing_and_quiet():
    tests = [t for f in ALL_UNIT_TESTS for t in yaml.safe_load(f.read_text())["tests"]]
    fired: dict[str, set[str]] = {}  # alert → windows seen firing
    quiet: set[str] = set()
    pending_then_firing: set[str] = set()
    for case in tests:
        evals = sorted(case.get("alert_rule_test", []), key=lambda e: duration_ms(e["eval_time"]))
        seen_quiet: set[str] = set()
        for e in evals:
            name = e["alertname"]
            if e["exp_alerts"]:
                fired.setdefault(name, set()).update(
                    a["exp_labels"].get("window", "") for a in e["exp_alerts"])
                if name in seen_quiet:
                    pending_then_firing.add(name)
            else:
                quiet.add(name)
                seen_quiet.add(name)
    for name, rules in alerts().items():
        assert name in fired, f"{name} never shown firing"
        assert name in quiet, f"{name} never shown staying quiet"
        # each rule of a multi-window alert (1h and 6h burn) is seen firing
        windows = {r["labels"].get("window", "") for r in rules}
        assert windows <= fired[name], f"{name}: windows never firing {windows - fired[name]}"
        if any("for" in r for r in rules):
            assert name in pending_then_firing, f"{name}: `for:` never shown holding it back"


def test_unit_tests_catch_a_broken_rule(tmp_path):
    # the same rules with the dead-letter alert's threshold raised: the tests must fail
    broken = RULES.read_text().replace(
        "expr: service_queue_reason:desk_bus_dead_lettered:increase10m > 0",
        "expr: service_queue_reason:desk_bus_dead_lettered:increase10m > 1")
    assert broken != RULES.read_text()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "alerts.yml").write_text(broken)
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / "deploy" / UNIT_TESTS.name)
    done = promtool("test", "rules", str(tmp_path / "tests" / "deploy" / UNIT_TESTS.name))
    assert done.returncode != 0
    assert "DeskDeadLetteredMessages" in done.stdout + done.stderr


def test_every_alert_has_a_runbook_entry():
    text = (ROOT / "docs" / "stats.md").read_text()
    runbook = text[text.index("## Runbook"):]
    for name, rules in alerts().items():
        assert re.search(rf"^\| `{name}` \|", runbook, re.M), f"no runbook row for {name}"
        for rule in rules:
            assert rule["annotations"]["runbook"] == "docs/stats.md#runbook"
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}


def test_compose_and_make_run_load_these_rules(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prom = compose["services"]["prometheus"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in prom["volumes"])
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert config["rule_files"] == [mounts["./deploy/alerts.yml"]]
    # the compose config is valid and loads the rules (paths as mounted in the container)
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{sum(len(g['rules']) for g in yaml.safe_load(RULES.read_text())['groups'])} rules found" \
        in done.stdout
    # `make run` writes a config for the five fixed ports that loads the same file
    spec = importlib.util.spec_from_file_location("desk_run", ROOT / "scripts" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    (tmp_path / "run").mkdir()
    path = run.write_prometheus_config(tmp_path / "run")
    local = yaml.safe_load(path.read_text())
    assert local["rule_files"] == [str(RULES)]
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{port}" for port in (8000, 8001, 8002, 8003, 8004)]
    done = promtool("check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_scaled_rules_keep_thresholds_and_divide_every_duration(tmp_path):
    original = yaml.safe_load(RULES.read_text())
    scaled = yaml.safe_load(scaled_rules(60))
    pairs = [(a, b) for ga, gb in zip(original["groups"], scaled["groups"], strict=True)
             for a, b in zip(ga["rules"], gb["rules"], strict=True)]
    for a, b in pairs:
        assert b.get("alert", b.get("record")) == a.get("alert", a.get("record"))
        assert re.sub(r"\[[^\]]*\]|offset \S+", "", a["expr"]) == \
            re.sub(r"\[[^\]]*\]|offset \S+", "", b["expr"])
        if "for" in a:
            assert duration_ms(b["for"]) * 60 == duration_ms(a["for"])
    assert scale_expr("rate(x[1h]) and y offset 10m or avg_over_time(z[6h:1m])", 60) == \
        "rate(x[60000ms]) and y offset 10000ms or avg_over_time(z[360000ms:1000ms])"
    (tmp_path / "scaled.yml").write_text(scaled_rules(60))
    done = promtool("check", "rules", str(tmp_path / "scaled.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("expr", "names", "grouping"), [
    ('sum by (service) (rate(a_total{x="1", y=~"p|q"}[5m])) / on (service) group_left b',
     {"a_total", "b"}, {"service"}),
    ("histogram_quantile(0.9, sum by (le) (rate(h_bucket{s=~\"$service\"}[$__range])))",
     {"h_bucket"}, {"le"}),
    ("label_values(desk_stats_open_requests, service)", {"desk_stats_open_requests"},
     {"service"}),
    ('{__name__="named", job="j"} > bool 1e3', {"named"}, set()),
    ("a unless on () b > 0 and c offset 1h30m # a comment with d_total",
     {"a", "b", "c"}, set()),
    ('label_replace(up, "dst", "$1", "instance", "(.*):.*")', {"up"}, set()),
    ('sum(x{s="with } and { braces"}) without (inst) + max(y) by (z)', {"x", "y"},
     {"inst", "z"}),
    ("count(a) - count(b offset -5m) * -2.5", {"a", "b"}, set()),
])
def test_promql_selectors_are_found(expr, names, grouping):
    parsed = parse(expr)
    assert {s.name for s in parsed.selectors} == names
    assert parsed.grouping == grouping
