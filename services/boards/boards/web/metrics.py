"""The agent workspace's metrics (defined once here)."""

from prometheus_client import Counter, Gauge

SESSIONS = Counter("desk_boards_web_sessions_total",
                   "Browser session events: signed_in, sign_in_refused, signed_out, csrf_refused",
                   ["event"])
LIVE_CLIENTS = Gauge("desk_boards_live_clients", "Server-sent-event clients connected")
LIVE_EVENTS = Counter("desk_boards_live_events_total",
                      "Bus events fanned out to live clients, by outcome (sent, dropped_slow, "
                      "undecodable)", ["outcome"])
SLA_FETCH_FAILED = Counter("desk_boards_web_sla_fetch_failed_total",
                           "Card pages shown without the SLA record (sla service unreachable)")
UPLOADS = Counter("desk_boards_web_attachment_uploads_total",
                  "Agents' attachment uploads handed to intake, by outcome (stored, too_large, "
                  "unreachable, disabled, http_<status>)", ["outcome"])
