"""The knowledge base's Prometheus metrics."""

from prometheus_client import Counter, Histogram

SAVED = Counter("desk_kb_articles_saved_total", "Article versions saved, by kind "
                "(created, revised).", ["kind"])
INVALID = Counter("desk_kb_invalid_input_total", "Article saves refused, by the field that "
                  "was wrong.", ["field"])
SEARCHES = Counter("desk_kb_searches_total", "Knowledge-base searches, by outcome (hit: at "
                   "least one article found, miss: none).", ["outcome"])
SEARCH_SECONDS = Histogram("desk_kb_search_seconds", "Time to answer one search (lookup, "
                           "ranking, highlights).",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
DEFLECTIONS = Counter("desk_kb_deflections_total", "Requests not filed because an article "
                      "solved the customer's problem (\"this solved my problem\" on the "
                      "portal), by the service the draft was for.", ["service"])
