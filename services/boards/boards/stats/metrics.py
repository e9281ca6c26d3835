"""Statistics' Prometheus metrics, observed once per event (on first processing only)."""

from prometheus_client import Counter, Gauge, Histogram

# Business seconds, from sla.target_completed: 5 min … 5 business days.
_BUSINESS_BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 432000)

OPEN_REQUESTS = Gauge("desk_stats_open_requests",
                      "Requests not done, by service and status category of their column.",
                      ["service", "category"])
FIRST_RESPONSE = Histogram("desk_stats_first_response_seconds",
                           "Time to first response in the SLA policy's business time.",
                           ["service"], buckets=_BUSINESS_BUCKETS)
RESOLUTION = Histogram("desk_stats_resolution_seconds",
                       "Time to resolution in the SLA policy's business time.",
                       ["service"], buckets=_BUSINESS_BUCKETS)
SLA_BREACHES = Counter("desk_stats_sla_breaches_total", "SLA targets breached.",
                       ["service", "target"])
SLA_MET = Counter("desk_stats_sla_met_total", "SLA targets completed on time.",
                  ["service", "target"])
CSAT = Histogram("desk_stats_csat_rating", "Customer satisfaction ratings (1–5).", ["service"],
                 buckets=(1, 2, 3, 4, 5))
EVENTS_APPLIED = Counter("desk_stats_events_applied_total",
                         "Events applied to the statistics read model, by type and effect "
                         "(applied, stale: an older card version arriving late).",
                         ["event_type", "effect"])
