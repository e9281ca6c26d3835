"""Intake's own Prometheus metrics (the shared ones live in desk_runtime.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

QUARANTINED = Counter(
    "desk_intake_quarantined_total",
    "Inbound messages kept aside (raw bytes stored) because they could not be turned into "
    "a request or reply, by reason.",
    ["reason"],
)
MAIL = Counter(
    "desk_intake_mail_total",
    "Inbound e-mail by door (smtp, imap, api) and outcome (request, reply, ignored, bounce, "
    "quarantined, duplicate).",
    ["source", "outcome"],
)
THREADING = Counter(
    "desk_intake_threading_total",
    "How inbound e-mail was threaded (reply_token, references, subject_token, new, ...).",
    ["reason"],
)
MAIL_SECONDS = Histogram(
    "desk_intake_mail_processing_seconds",
    "From a message's acceptance (stored) to its request/reply event committed.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TELEGRAM_UPDATES = Counter(
    "desk_intake_telegram_updates_total",
    "Telegram updates handled, by kind and outcome.",
    ["kind", "outcome"],
)
IMAP_POLLS = Counter(
    "desk_intake_imap_polls_total", "IMAP mailbox polls, by outcome (ok, error).", ["outcome"],
)
