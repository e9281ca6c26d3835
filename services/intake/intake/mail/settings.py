"""The e-mail channel's settings (SMTP listener, IMAP polling, sender trust, processing)."""

from desk_contracts.access import AddressSet
from pydantic import BaseModel, Field


class MailSettings(BaseModel):
    inbound_domain: str = "desk.localhost"
    reply_token_secret: str = "change-me"
    mta_token: str = Field("", description="Bearer token the MTA presents on POST "
                           "/v1/inbound/email; empty = the pipe is closed")

    # SMTP listener for <service>@<inbound_domain>; port 0 = no listener.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    max_message_bytes: int = 35 * 1024 * 1024

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
    # a reply whose valid reply token names a card intake has not heard of yet (its
    # card.created is still on its way) waits this long for it before it is filed as a new
    # request
    reply_wait_seconds: float = 300.0
    # Processing workers in this process; 0 = accept and store only (a front-door replica
    # whose stored mail other replicas process).
    mail_workers: int = Field(4, ge=0, le=32)
