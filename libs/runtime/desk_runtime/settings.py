"""The settings base every service's settings class extends (each with its own env prefix)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; a service subclasses it and sets `env_prefix` (e.g. `BOARDS_`)."""

    model_config = SettingsConfigDict(env_prefix="DESK_", extra="ignore", env_nested_delimiter="__")

    # Settings a deployment must set explicitly (their defaults only suit a laptop);
    # tests check docker-compose and the Kubernetes manifests provide each of them.
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("amqp_url", "mongo_url", "http_host",
                                                         "http_port")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_db: str = ""
    bus_namespace: str = Field("", description="prefix for exchange/queue names (test isolation)")
    bus_partitions: int = Field(4, ge=1, le=64, description="partitions per consumer queue "
                                "(the most replicas one queue's work spreads over); the same "
                                "for every service, changed only by the procedure in "
                                "docs/architecture.md")
    lease_seconds: float = Field(10.0, gt=0, description="TTL of singleton-work leases "
                                 "(IMAP mailboxes, the Telegram poller and sender, each bus "
                                 "partition a replica consumes) and of replica membership: "
                                 "how long a dead replica's work waits before another takes "
                                 "it over")
    account_id: str = "default"
    http_host: str = "127.0.0.1"
    http_port: int = 0
    log_level: str = "INFO"
    log_json: bool = True
    outbox_relay: bool = Field(True, description="run the outbox relay in this process")
    outbox_poll_seconds: float = 0.5
    outbox_committer_lease_seconds: float = Field(
        10.0, gt=0, description="how long a committed event is left to the process that "
        "committed it (which publishes it right after the commit) before another relay's "
        "fallback may publish it: what an event waits when its committer died")
    prefetch: int = Field(16, description="messages in flight per queue and process; events "
                          "of one card are still handled one at a time")
    store_transactions: int = Field(4, ge=1, description="transactions this process runs in "
                                    "the store at once; the rest wait their turn here, not "
                                    "in the store (where hundreds at once serialise on its "
                                    "transaction bookkeeping and time out)")
    consumer_transactions: int = Field(2, ge=1, description="store transactions this "
                                       "process's consumers run at once; events that "
                                       "arrive while they are busy wait and then go to the "
                                       "store together (group commit)")
    consumer_batch: int = Field(16, ge=1, description="most consumed events committed in "
                                "one store transaction (1: each event alone)")
    transaction_timeout_seconds: float = Field(5.0, description="longest a command's "
                                               "transaction may take, retries included (the "
                                               "store away: an HTTP caller gets 503, not a hang)")
    consumer_transaction_timeout_seconds: float = Field(
        60.0, description="the same bound for a consumer's transaction (then it backs off)")
    bus_start_wait_seconds: float = Field(10.0, description="how long start-up waits for the "
                                          "broker before serving (not ready) without it")
    public_url: str = ""
    admin_token: str = Field("", description="Bearer token for this service's admin endpoints; "
                             "empty disables them")
    otel_endpoint: str = Field("", description="OTLP/HTTP collector URL for traces (e.g. "
                               "http://otel-collector:4318); empty: no traces unless "
                               "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set")

    def database_name(self, service: str) -> str:
        return self.mongo_db or f"desk_{service}"
