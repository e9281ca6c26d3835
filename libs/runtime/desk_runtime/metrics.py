"""The Prometheus metrics every service exposes, defined once and labelled by service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUS_IN = Counter(
    "desk_bus_messages_consumed_total",
    "Messages taken from a queue, by outcome (processed, duplicate, skipped: nothing to do, "
    "ignored: no handler, retried, dead_lettered).",
    ["service", "queue", "event_type", "outcome"],
)
BUS_OUT = Counter(
    "desk_bus_messages_published_total",
    "Events published to the bus (confirmed by the broker).",
    ["service", "event_type"],
)
HANDLER_SECONDS = Histogram(
    "desk_bus_handler_seconds",
    "Time to handle one message, effect committed.",
    ["service", "queue", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "desk_bus_consumer_lag_seconds",
    "Age (occurred → handled) of the last message a queue's consumer took.",
    ["service", "queue"],
)
DEAD_LETTERED = Counter(
    "desk_bus_dead_lettered_total",
    "Messages moved to a dead-letter queue, by reason.",
    ["service", "queue", "reason"],
)
OUTBOX_PENDING = Gauge(
    "desk_outbox_pending", "Outbox entries not yet confirmed by the broker.", ["service"]
)
OUTBOX_LAG = Gauge(
    "desk_outbox_lag_seconds", "Age of the oldest unpublished outbox entry.", ["service"]
)
CONSUMER_GROUP_SIZE = Histogram(
    "desk_bus_group_commit_events",
    "Consumed events committed together in one store transaction (1: alone).",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32),
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "desk_outbox_commit_to_publish_seconds",
    "Delay between an outbox entry's commit and its confirmed publication.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_REQUESTS = Counter(
    "desk_http_requests_total", "HTTP requests served.", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "desk_http_request_seconds", "HTTP request latency.", ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REJECTED_INPUT = Counter(
    "desk_rejected_input_total",
    "Customer or integrator input refused or quarantined, by channel and reason.",
    ["service", "channel", "reason"],
)
TRANSIENT_WAITS = Counter(
    "desk_bus_transient_waits_total",
    "Times a consumer held a message back because the store or broker was away "
    "(never counted toward the message's delivery limit).",
    ["service", "queue"],
)
STORE_TRANSACTIONS = Counter(
    "desk_store_transactions_total",
    "Store transactions committed, by what ran them (command, consumer, outbox).",
    ["service", "kind"],
)
TASK_RESTARTS = Counter(
    "desk_background_task_restarts_total",
    "Background tasks (relays, dispatchers, schedulers, pollers) restarted after a failure.",
    ["service", "task"],
)
WORKER_ROUNDS = Counter(
    "desk_worker_rounds_total",
    "Rounds of background workers, by outcome (worked: found work; idle: nothing due; failed).",
    ["service", "worker", "outcome"],
)
TASK_UP = Gauge(
    "desk_background_task_up",
    "1 while a background task runs without failing, 0 while it backs off after a failure.",
    ["service", "task"],
)
PARTITIONS_OWNED = Gauge(
    "desk_bus_partitions_owned",
    "Bus partitions this replica consumes (of its service's `bus_partitions`): its share "
    "of the live replicas, agreed through the store (0: a standby while others own them all).",
    ["service"],
)
LEASE_CHANGES = Counter(
    "desk_lease_changes_total",
    "Singleton-work leases this process acquired (first or after a takeover) or lost, by "
    "kind (the lease name's prefix, e.g. imap, telegram).",
    ["service", "kind", "change"],
)
