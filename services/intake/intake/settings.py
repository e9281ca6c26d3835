"""Intake's settings (env prefix INTAKE_; nested values with `__`, e.g. INTAKE_TELEGRAM__TOKEN)."""

from typing import Literal

from desk_contracts.access import AddressSet
from desk_runtime.settings import ServiceSettings
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict


class TelegramConfig(BaseModel):
    """The account's bot. `mode=off` (the default) starts neither webhook handling nor polling."""

    token: str = ""
    api_base: str = "https://api.telegram.org"
    webhook_secret: str = ""
    mode: Literal["webhook", "polling", "off"] = "off"
    poll_timeout_seconds: int = Field(25, ge=0, le=50)
    # Where Telegram should POST updates in webhook mode; empty = set it up by hand.
    webhook_url: str = ""


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore",
                                      env_nested_delimiter="__")
    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "reply_token_secret",
                              "link_secret", "inbound_domain", "public_url", "smtp_host")

    http_port: int = 8001
    inbound_domain: str = "desk.localhost"
    reply_token_secret: str = "change-me"
    link_secret: str = Field("change-me", description="signs attachment download links")
    admin_token: str = Field("", description="Bearer token for quarantine/mailbox admin API")
    mta_token: str = Field("", description="Bearer token the MTA presents on POST "
                           "/v1/inbound/email; empty = the pipe is closed")
    portal_token: str = Field("", description="the portal's credential (Bearer) on the web "
                              "API: a caller presenting it vouches for the requester's "
                              "address; empty = no caller is trusted")

    # SMTP listener for <service>@<inbound_domain>; port 0 = no listener.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    max_message_bytes: int = 35 * 1024 * 1024
    max_attachment_bytes: int = 25 * 1024 * 1024

    # Local parts that take replies only (notify's From address, e.g. desk@<domain>): mail
    # to them is accepted, threaded if it can be, else quarantined as unknown_service.
    reply_only_local_parts: list[str] = ["desk", "noreply", "no-reply"]

    # Who may write into an existing request (see intake.mail.trust / docs/intake.md).
    # authserv-ids (RFC 8601) of the upstream MTAs whose Authentication-Results count: the
    # organisation's MX, or the mailbox provider polled over IMAP. They must strip such
    # headers carrying their id from incoming mail, as RFC 8601 asks.
    trusted_authserv_ids: list[str] = []
    # Verify DKIM signatures ourselves when no trusted Authentication-Results is present.
    dkim_verify: bool = True
    # Pinned DKIM keys, `<selector>._domainkey.<domain>` -> the TXT record ("v=DKIM1; k=rsa;
    # p=..."): used before DNS (and instead of it with dkim_dns=false, e.g. air-gapped).
    dkim_keys: dict[str, str] = Field(default_factory=dict)
    dkim_dns: bool = True
    # true = a reply with no positive authentication (no DKIM/DMARC pass) is held too, not
    # only one that fails it
    require_authenticated_sender: bool = False
    # organisations whose members are participants of each other's requests (the same JSON
    # as PORTAL_ORGANISATIONS): org id -> {"domains": [...], "addresses": [...]}
    organisations: dict[str, AddressSet] = Field(default_factory=dict)

    imap_poll_seconds: float = 30.0
    # Pending mail (stored but not yet turned into events) is retried this often.
    mail_retry_seconds: float = 5.0
    # A bounce may beat the `notification.sent` that tells intake the Message-ID is ours:
    # a report naming an unknown Message-ID of our domain waits this long before it is
    # judged not to be about our mail.
    bounce_wait_seconds: float = 120.0
    # Processing workers in this process; 0 = accept and store only (a front-door replica
    # whose stored mail other replicas process).
    mail_workers: int = Field(4, ge=0, le=32)

    telegram: TelegramConfig = TelegramConfig()
