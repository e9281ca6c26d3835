"""Automation's Prometheus metrics."""

from prometheus_client import Counter, Histogram

RULE_RUNS = Counter("desk_automation_rule_runs_total", "Rule runs on card events, by outcome "
                    "(ran, skipped: a condition failed, loop_stopped: the depth limit).",
                    ["outcome"])
ACTIONS = Counter("desk_automation_actions_total", "Rule actions carried out, by action and "
                  "outcome (done, unchanged, failed).", ["action", "outcome"])
EVALUATION_SECONDS = Histogram(
    "desk_automation_evaluation_seconds", "Time to decide which rules one card event runs "
    "(rules read from the process cache, triggers and conditions checked).",
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1))
CHAIN_STEPS = Counter("desk_automation_template_steps_total", "Request-template steps "
                      "started (a child card each), by template.", ["template"])
