"""Notify's own Prometheus metrics (the bus and HTTP ones come from desk_runtime.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NOTIFICATIONS = Counter(
    "desk_notify_notifications_total",
    "Notifications by channel, kind and outcome (queued, sent, retried, failed, suppressed, "
    "muted, rate_limited, duplicate, claim_lost: a stalled replica's claim was taken over "
    "before it sent).",
    ["channel", "kind", "outcome"],
)
PENDING = Gauge(
    "desk_notify_pending_deliveries",
    "Deliveries waiting to be sent (pending or retrying), by channel: the send queue depth.",
    ["channel"],
)
SEND_SECONDS = Histogram(
    "desk_notify_send_seconds",
    "Time one send takes at the channel (SMTP transaction, Telegram/Slack HTTP call).",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_TO_SENT_SECONDS = Histogram(
    "desk_notify_event_to_sent_seconds",
    "Delay from the causing event to the notification's successful send.",
    ["channel", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
SKIPPED = Counter(
    "desk_notify_skipped_total",
    "Events that produced no notification on purpose, by reason (internal_note, "
    "customer_echo, unknown_card, status_not_announced).",
    ["reason"],
)
REQUEST_TO_ACK_SECONDS = Histogram(
    "desk_notify_request_to_ack_seconds",
    "From a request's receipt (its received_at) to its acknowledgment's successful send.",
    ["channel"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
RECORD_RETRIES = Counter(
    "desk_notify_record_retries_total",
    "Sends that went out but whose record had to be retried (store busy or away): each is "
    "held and recorded later, never sent again.",
)
