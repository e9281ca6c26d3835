"""SLA's own metrics (the bus/HTTP ones come from desk_runtime.metrics)."""

from prometheus_client import Counter, Gauge, Histogram

SIGNALS = Counter("desk_sla_signals_total",
                  "SLA signals published (warning, breached, met, reminder, auto_close)",
                  ["kind", "service", "target"])
DETECTION_LAG = Histogram(
    "desk_sla_detection_lag_seconds",
    "How late a warning/breach was published after the instant it became due",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))
CLOCKS = Gauge("desk_sla_clocks", "Cards with open SLA targets, by whether a clock runs",
               ["state"])
SKIPPED_TASKS = Counter("desk_sla_task_events_skipped_total",
                        "Events of task cards whose type names no SLA policy (no clock runs)")
