"""The bus topology as code: the exchange, every queue, its bindings and dead-letter route.

Every service declares the whole topology at start-up (declarations are idempotent),
so events published before a consumer first starts wait in its queue instead of
being lost.

Each (service, purpose) is one *logical* queue split into `partitions` quorum queues
`<service>.<purpose>.p<i>`, each with a single active consumer. A consistent-hash
exchange named like the logical queue (`<service>.<purpose>`) takes the logical queue's
bindings from the topic exchange and spreads messages over the partitions by the
`x-partition-key` header (the card a message is about), so all events of one card land
in one partition and are handled by one consumer at a time, whichever replica it is.
The partitions share one dead-letter queue, `<service>.<purpose>.dead`.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_EXCHANGE = "desk.events"
DEAD_LETTER_EXCHANGE = "desk.dead"
DELIVERY_LIMIT = 5
# Partitions per logical queue: the most consumers (replicas) one queue's work spreads
# over. Changing it re-maps cards to partitions: see docs/architecture.md ("Changing the
# partition count") for the drain-and-redeclare procedure.
PARTITIONS = 4
# The header the consistent-hash exchanges hash on; a message without it (an
# integrator's) hashes as "no value" and lands in one fixed partition, exactly once.
PARTITION_HEADER = "x-partition-key"


@dataclass(frozen=True)
class QueueSpec:
    service: str
    purpose: str
    bindings: tuple[str, ...]
    description: str
    # on the customer's path (a request becoming a card): its service commits its events
    # before those of its other queues, which may lag behind in a burst
    urgent: bool = False

    @property
    def name(self) -> str:
        return f"{self.service}.{self.purpose}"


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("intake", "catalog", ("catalog.service_changed.v1",),
              "Keeps intake's copy of the catalog for validating requests."),
    QueueSpec("intake", "threads", ("card.created.v1", "card.moved.v1", "notification.sent.v1"),
              "Keeps the map from e-mail Message-IDs and Telegram messages to cards."),
    QueueSpec("intake", "customers", ("customer.groups_changed.v1",),
              "Keeps intake's copy of the customer groups services' access rules name."),
    QueueSpec("boards", "requests", ("request.received.v1", "request.reply_received.v1",
                                     "request.rated.v1"),
              "Turns customer requests and replies into cards and comments.", urgent=True),
    QueueSpec("boards", "sla", ("sla.warning.v1", "sla.breached.v1", "sla.met.v1",
                            "sla.auto_close.v1", "sla.clock_changed.v1"),
              "Shows SLA signals on cards and closes requests the customer abandoned."),
    QueueSpec("boards", "stats", ("card.created.v1", "card.moved.v1", "card.assigned.v1",
                                  "card.updated.v1", "card.linked.v1", "comment.added.v1",
                                  "request.rated.v1", "sla.target_completed.v1",
                                  "sla.breached.v1", "sla.met.v1", "request.deflected.v1"),
              "Builds the statistics read model (flow, response times, SLA, CSAT, "
              "requests an article deflected)."),
    QueueSpec("boards", "automation", ("card.created.v1", "card.moved.v1", "card.updated.v1",
                                       "card.assigned.v1", "comment.added.v1",
                                       "sla.warning.v1", "sla.breached.v1"),
              "Runs the automation rules and request templates a card event triggers."),
    QueueSpec("sla", "cards", ("card.created.v1", "card.moved.v1", "card.updated.v1",
                               "comment.added.v1", "catalog.service_changed.v1"),
              "Drives SLA clocks from card events."),
    QueueSpec("notify", "events", ("card.created.v1", "card.moved.v1", "card.assigned.v1",
                                   "card.updated.v1", "comment.added.v1", "sla.warning.v1", "sla.breached.v1",
                                   "request.reply_received.v1",
                                   "catalog.service_changed.v1", "sla.customer_reminder.v1",
                                   "customer.preferences_changed.v1",
                                   "customer.address_bounced.v1", "card.mentioned.v1"),
              "Tells customers and agents what happened, by their channel."),
    QueueSpec("portal", "cards", ("card.created.v1", "card.moved.v1", "card.updated.v1",
                                  "card.assigned.v1", "comment.added.v1",
                                  "catalog.service_changed.v1", "request.rated.v1"),
              "Keeps each customer's read model of their requests."),
)

# Bindings a queue once had and has no more: declaring the topology removes them from a
# broker an older version set up, so the queue stops receiving events nobody handles.
RETIRED_BINDINGS: dict[str, tuple[str, ...]] = {
    "intake.threads": ("comment.added.v1",),
    "portal.cards": ("card.linked.v1",),
    # card.created carries what notify needs of the request (RequestOrigin)
    "notify.events": ("request.received.v1",),
}


@dataclass(frozen=True)
class Topology:
    """Names on the broker; `namespace` isolates parallel test runs on one broker."""

    namespace: str = ""
    partitions: int = PARTITIONS

    def _n(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    def name(self, name: str) -> str:
        """Any broker object's name in this namespace (e.g. a replica's own queue)."""
        return self._n(name)

    @property
    def exchange(self) -> str:
        return self._n(EVENTS_EXCHANGE)

    @property
    def dead_exchange(self) -> str:
        return self._n(DEAD_LETTER_EXCHANGE)

    def queue(self, spec: QueueSpec) -> str:
        """The logical queue's name: its hash exchange's, its dead letters' routing key."""
        return self._n(spec.name)

    def hash_exchange(self, spec: QueueSpec) -> str:
        return self._n(spec.name)

    def partition(self, spec: QueueSpec, index: int) -> str:
        return f"{self._n(spec.name)}.p{index}"

    def partition_queues(self, spec: QueueSpec) -> tuple[str, ...]:
        return tuple(self.partition(spec, i) for i in range(self.partitions))

    def logical_queue(self, name: str) -> str:
        """The logical queue a partition queue belongs to (`boards.requests.p3` → `boards.requests`)."""
        head, _, tail = name.rpartition(".p")
        return head if head and tail.isdigit() else name

    def dead_queue(self, spec: QueueSpec) -> str:
        return self._n(spec.name) + ".dead"

    def queue_arguments(self, spec: QueueSpec) -> dict[str, object]:
        return {
            "x-queue-type": "quorum",
            # one consumer at a time per partition, so a card's events are never handled
            # by two replicas at once — the safety net under the store-agreed assignment
            # (desk_runtime.membership), where a replica that has not let go yet keeps
            # the new owner waiting
            "x-single-active-consumer": True,
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_exchange,
            "x-dead-letter-routing-key": self.queue(spec),
        }


def queues_of(service: str) -> tuple[QueueSpec, ...]:
    return tuple(q for q in QUEUES if q.service == service)


def queue_spec(name: str) -> QueueSpec:
    for q in QUEUES:
        if q.name == name:
            return q
    raise KeyError(f"no queue named {name!r}")


def routing_key(type_: str, version: int) -> str:
    return f"{type_}.v{version}"
