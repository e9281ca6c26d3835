"""Boards' own Prometheus metrics (the shared ones live in desk_runtime.metrics)."""

from prometheus_client import Counter, Histogram

CARD_CHANGES = Counter("desk_boards_card_changes_total", "Card changes committed, by kind.",
                       ["change"])
STALE_VERSIONS = Counter("desk_boards_stale_version_total",
                         "Card edits refused because the card changed since the editor read it.")
WIP_REFUSED = Counter("desk_boards_wip_limit_refused_total",
                      "Moves refused because the target column was at its WIP limit.")
ACCESS_DENIED = Counter("desk_boards_access_denied_total",
                        "Agent requests refused for lack of a role or board membership.",
                        ["reason"])
REQUEST_TO_CARD = Histogram(
    "desk_boards_request_to_card_seconds",
    "From a request's receipt (its received_at) to its card's creation, by channel.",
    ["channel"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800))
TRANSFERS_REFUSED = Counter("desk_boards_transfer_refused_total",
                            "Moves to another board refused by the target board's rules, by rule.",
                            ["rule"])
MENTIONS = Counter("desk_boards_mentions_total",
                   "Agents named in internal notes: told, or without a contact to tell.",
                   ["outcome"])
FOLLOWER_NOTICES = Counter("desk_boards_follower_notices_total",
                           "Followers told of a change to a card they follow, by change.",
                           ["change"])
BULK_RESULTS = Counter("desk_boards_bulk_results_total",
                       "Cards a bulk action touched, by action and result (done, unchanged, "
                       "refused).", ["action", "status"])
SEARCHES = Counter("desk_boards_card_searches_total",
                   "Card searches and table pages served, by what asked (search, table, "
                   "export) and whether the input was refused as invalid.",
                   ["kind", "outcome"])
