"""A real Prometheus scrapes the five running services with deploy/alerts.yml loaded: a real
SLA breach and a real dead letter make their alerts fire in Prometheus' API, and resolve
when the cause clears; every metric and label the dashboard and the rules name is one the
running services export."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from pathlib import Path

import aio_pika
import httpx
import pytest
import yaml
from desk_contracts.topology import Topology
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support.mail import MailSink
from tests.support.prometheus import RULES, Prometheus, parse, scaled_rules
from tests.support.stack import SERVICES, Stack, card_for, cleanup, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# every window and `for:` of the rules divided by 120: an hour is 30 s, 15m is 7.5 s, 10m
# is 5 s (still five scrapes a second apart); the test's four breaches land well inside 30 s
SCALE = 120
SLA_ADMIN = "live-sla-admin"
PROMETHEUS_LABELS = {"job", "instance"}  # added to every scraped series


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus-live")
    with MailSink() as mail:
        stack = Stack(mongo_url, amqp_url, workdir, smtp_port=mail.port, extra={
            "sla": {"SLA_ADMIN_TOKEN": SLA_ADMIN, "SLA_SCHEDULER_POLL_SECONDS": "0.1"},
            "boards": {"BOARDS_STATS_GAUGE_REFRESH_SECONDS": "1"},
        })
        prom = Prometheus(workdir, {n: f"127.0.0.1:{stack.ports[n]}" for n in SERVICES},
                          scaled_rules(SCALE))
        try:
            stack.start()
            prom.start()
            yield stack, prom, mail
        finally:
            prom.stop()
            stack.stop()
            cleanup(mongo_url, amqp_url, stack.namespace)


def submit(stack: Stack, subject: str) -> dict:
    body = {"service": "question", "subject": subject, "text": "Please help.",
            "requester": {"email": f"c.{uuid.uuid4().hex[:8]}@acme.example", "name": "C"}}

    def post():
        r = httpx.post(f"{stack['intake'].url}/v1/requests", json=body, timeout=10)
        return r if r.status_code != 404 else None  # the catalog may still be arriving
    r = wait_until(post, timeout=20)
    assert r.status_code == 202, r.text
    return {"request_id": r.json()["request_id"], "email": body["requester"]["email"]}


async def publish_raw(amqp_url: str, namespace: str, body: bytes, routing_key: str) -> None:
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Topology(namespace).exchange)
        await exchange.publish(aio_pika.Message(body=body), routing_key=routing_key)


def firing(prom: Prometheus, name: str, **labels: str) -> list[dict]:
    return [a for a in prom.alerts(name, "firing")
            if all(a["labels"].get(k) == v for k, v in labels.items())]


def test_a_real_breach_and_dead_letter_fire_their_alerts_and_resolve(desk, amqp_url):
    stack, prom, _ = desk
    wait_until(lambda: prom.query("sum(up)") and
               float(prom.query("sum(up)")[0]["value"][1]) == len(SERVICES), timeout=30)
    # every rule loads and evaluates without error against the real series
    wait_until(lambda: prom.rule_health() == [], timeout=30)
    assert prom.alerts("DeskDeadLetteredMessages") == []
    assert prom.alerts("DeskSlaBreachRate") == []

    # the question service's SLA: first response in 3 s, resolution in 6 s
    r = httpx.put(f"{stack['sla'].url}/v1/policies/consultation",
                  headers={"Authorization": f"Bearer {SLA_ADMIN}"},
                  json={"calendar": "24x7", "targets": {"first_response": 0.05,
                                                        "resolution": 0.1}})
    assert r.status_code == 200, r.text

    # Prometheus has watched the services for one (scaled) dead-letter window, so a
    # dead-letter counter that appears now is known to be new
    wait_until(lambda: len(prom.query(f"up offset {600 // SCALE}s")) == len(SERVICES),
               timeout=30)
    queue = f"{stack.namespace}.boards.requests"
    asyncio.run(publish_raw(amqp_url, stack.namespace, b"{not json", "request.received.v1"))
    # looked for at once: it fires for one (scaled) dead-letter window, 5 s
    dead = wait_until(lambda: firing(prom, "DeskDeadLetteredMessages", queue=queue),
                      timeout=60)
    assert dead[0]["labels"]["service"] == "boards"
    assert dead[0]["labels"]["reason"] == "malformed envelope"
    assert dead[0]["annotations"]["summary"] == \
        f"boards dead-lettered messages on {queue} (malformed envelope)"

    # one breach first: breaches that all land between two scrapes would create the
    # counter at 3 and `increase()` would see no step in a window shorter than the test
    first = submit(stack, "First")
    card_for(stack, first["request_id"])
    breaches = 'desk_stats_sla_breaches_total{service="question", target="first_response"}'
    wait_until(lambda: prom.query(breaches), timeout=30)
    for i in range(3):
        card_for(stack, submit(stack, f"More {i}")["request_id"])

    breach = wait_until(lambda: firing(prom, "DeskSlaBreachRate", service="question",
                                       target="first_response"), timeout=90)
    assert breach[0]["annotations"]["summary"] == \
        "question: over 20 % of first_response SLA targets breached in the last hour"
    assert float(prom.query(f"sum({breaches})")[0]["value"][1]) == 4

    # no new dead letters, no new breaches: both resolve once their windows pass
    wait_until(lambda: prom.alerts("DeskDeadLetteredMessages", "firing") == [], timeout=60)
    wait_until(lambda: not prom.alerts("DeskSlaBreachRate", "firing"), timeout=120)
    assert prom.rule_health() == []


# --- every metric and label named by the dashboard and the rules is exported --------------

def live_metrics(stack: Stack) -> tuple[dict[str, set[str] | None], dict[str, set[str]]]:
    """Sample name → its label names (None: declared, no sample yet), and bucket bounds."""
    names: dict[str, set[str] | None] = {}
    buckets: dict[str, set[str]] = {}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("_sum", "_count"), "gauge": ("",)}
    for service in SERVICES:
        text = httpx.get(f"{stack[service].url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for suffix in suffixes.get(family.type, ("",)):
                names.setdefault(family.name + suffix, None)
            for sample in family.samples:
                known = names.get(sample.name) or set()
                names[sample.name] = known | set(sample.labels)
                if sample.name.endswith("_bucket"):
                    buckets.setdefault(sample.name, set()).add(sample.labels["le"])
    return names, buckets


def declared_labels() -> dict[str, set[str]]:
    """Label names as the code declares them, for families with no sample in this run."""
    for module in ("desk_runtime.metrics", "boards.metrics", "boards.stats.metrics",
                   "sla.metrics", "intake.metrics", "notify.metrics"):
        importlib.import_module(module)
    out: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 (no public accessor)
        labels = set(getattr(collector, "_labelnames", ()))
        for name in REGISTRY._collector_to_names[collector]:  # noqa: SLF001
            out[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return out


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard query and template, every rule expression."""
    out = []
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            out += [(f"{path.name} panel {panel.get('title')!r}", t["expr"])
                    for t in panel.get("targets", [])]
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                q = var["query"]
                out.append((f"{path.name} variable {var['name']}",
                            q["query"] if isinstance(q, dict) else q))
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            out.append((f"alerts.yml {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return out


def problems(exprs: list[tuple[str, str]], exported: dict[str, set[str] | None],
             buckets: dict[str, set[str]], declared: dict[str, set[str]]) -> list[str]:
    rules = yaml.safe_load(RULES.read_text())["groups"]
    recorded: dict[str, set[str]] = {}
    for group in rules:  # a recording rule's series carry the labels its expression keeps
        for rule in group["rules"]:
            if "record" in rule:
                parsed = parse(rule["expr"])
                recorded[rule["record"]] = parsed.grouping | PROMETHEUS_LABELS | {
                    m[0] for s in parsed.selectors for m in s.matchers} | {
                    label for s in parsed.selectors for label in recorded.get(s.name, ())}
    found = []
    for where, expr in exprs:
        parsed = parse(expr)
        available = set(PROMETHEUS_LABELS)
        for sel in parsed.selectors:
            if sel.name is None:
                found.append(f"{where}: a selector without a metric name")
                continue
            if sel.name in recorded:
                labels = recorded[sel.name]
            elif sel.name == "up":
                labels = set()
            elif sel.name not in exported:
                found.append(f"{where}: {sel.name} is not exported by any service")
                continue
            else:
                labels = exported[sel.name]
                if labels is None:
                    labels = declared.get(sel.name, set())
            labels = labels | PROMETHEUS_LABELS
            available |= labels
            for label, op, value in sel.matchers:
                if label not in labels:
                    found.append(f"{where}: {sel.name} has no label {label!r}")
                elif label == "le" and op == "=" and sel.name in buckets \
                        and value not in buckets[sel.name]:
                    found.append(f"{where}: {sel.name} has no bucket le={value!r}")
        for label in parsed.grouping - available - {"le"}:
            found.append(f"{where}: groups by {label!r}, which none of its series has")
    return found


def test_dashboard_and_rules_name_only_what_the_running_desk_exports(desk):
    stack, _, mail = desk
    # a request through the pipeline, so its histograms have samples (and label names)
    sent = submit(stack, "Metrics")
    card_for(stack, sent["request_id"])
    mail.wait_for(sent["email"])
    exported, buckets = wait_until(
        lambda: (m := live_metrics(stack))[0].get("desk_notify_request_to_ack_seconds_count")
        and m, timeout=30)
    assert {"channel"} <= exported["desk_boards_request_to_card_seconds_count"]
    assert "60.0" in buckets["desk_boards_request_to_card_seconds_bucket"]

    exprs = queries()
    assert len(exprs) > 50
    declared = declared_labels()
    assert problems(exprs, exported, buckets, declared) == []

    # the check bites: a renamed metric, a misspelt label, a bucket that does not exist
    broken = [("renamed", "increase(desk_bus_dead_lettered[10m]) > 0"),
              ("label", 'sum by (service) (desk_outbox_lag_seconds{servcie="x"})'),
              ("grouping", "sum by (queue) (desk_outbox_lag_seconds)"),
              ("bucket", 'rate(desk_boards_request_to_card_seconds_bucket{le="61.0"}[5m])')]
    assert [p.split(":")[0] for p in problems(broken, exported, buckets, declared)] == \
        ["renamed", "label", "grouping", "bucket"]
