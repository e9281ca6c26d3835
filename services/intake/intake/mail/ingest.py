"""The one path every inbound mail takes, whichever door it came through (SMTP, IMAP, HTTP).

1. `accept`: the raw bytes are stored and an `inbound_mail` record is written (unique on
   service + Message-ID, or the raw bytes' hash without one) *before* the door confirms
   receipt, so an accepted message survives a crash and a redelivered one is recognised.
2. `process`: parse, drop loops and noise, thread, and emit `request.received` /
   `request.reply_received` / `customer.address_bounced` in one transaction with the
   record's new status. Anything that cannot become an event is quarantined with its reason.
   Pending records are retried by a sweeper, so a crash between 1 and 2 loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from desk_contracts.channels import EMAIL
from desk_contracts.events import AddressBounced, AttachmentRef, Person, ReplyReceived, clean_name
from desk_runtime.config_cache import config_cache
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.service import ServiceRuntime
from desk_runtime.worker import Worker

from intake.application import AccessRefused, UnknownService, accept_request
from intake.attachments import AttachmentStore, AttachmentTooLarge
from intake.domain.threading import UNKNOWN_CARD, Lookups, choose_thread, clues_of
from intake.domain.requests import RequestDraft
from intake.mail.parse import ParsedMail, Unparseable, parse_mail
from intake.mail.trim import strip_signature, trim_reply
from intake.mail.trust import SenderTrust, hold_reason, is_participant
from intake.metrics import MAIL, MAIL_SECONDS, QUARANTINED, THREADING
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings

log = get_logger(__name__)
SWEEP_IDLE_MAX = 60.0

_LOCAL = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})(?:\+([a-z0-9-]{1,60}))?$")
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Recipient:
    """An address of ours: `<service>@domain` or `<service>+<reply token>@domain`."""

    service: str
    token: str | None = None


def split_recipient(address: str, inbound_domain: str) -> Recipient | None:
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    if domain != inbound_domain.lower():
        return None
    match = _LOCAL.match(local)
    if not match:
        return None
    return Recipient(match.group(1), match.group(2))


def route_recipient(address: str, inbound_domain: str,
                    routes: Mapping[str, str]) -> Recipient | None:
    """An address of ours: one an admin routed to a service (an inbound address, on any
    domain), else `<service>[+token]@<inbound domain>`."""
    bare = address.strip().strip("<>").lower()
    if bare in routes:
        return Recipient(routes[bare])
    return split_recipient(bare, inbound_domain)


INBOUND_ROUTES_KEY = ("inbound_addresses",)


def quick_message_id(raw: bytes) -> str | None:
    """The Message-ID from the header block alone (dedupe happens before full parsing)."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        value = headers.get("Message-ID") or ""
    except Exception:
        return None
    found = re.findall(r"<([^<>\s]+)>", str(value))
    return found[0] if found else None


class AlreadyDone(Exception):
    """Another worker finished this record first."""


class Deferred(Exception):
    """Not decidable yet (e.g. a bounce that beat its notification.sent): try again later."""


class MailIngest:
    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        self.runtime = runtime
        self.settings = settings
        self.attachments = attachments
        self.repo = IntakeRepository(runtime.db)
        self.trust = SenderTrust.from_settings(settings)
        # (record id, record, raw bytes): fresh mail is processed without re-reading it
        self._queue: asyncio.Queue[tuple[str, dict | None, bytes | None]] = asyncio.Queue()
        self._workers: list[Worker] = []
        self._retry_soon = False

    # -- where mail goes --------------------------------------------------------------------

    async def inbound_routes(self) -> Mapping[str, str]:
        """address → service of the inbound addresses admins set (kept briefly per process;
        a change through this replica is seen at once, through another within seconds)."""
        async def load() -> Mapping[str, str]:
            return MappingProxyType({d["_id"]: d["service"]
                                     for d in await self.repo.inbound_addresses()})
        return await config_cache(self.runtime.db.name).get(INBOUND_ROUTES_KEY, load)

    async def recipient(self, address: str) -> Recipient | None:
        return route_recipient(address, self.settings.inbound_domain,
                               await self.inbound_routes())

    # -- acceptance -------------------------------------------------------------------------

    async def accept(self, raw: bytes, recipients: list[Recipient], *, source: str,
                     envelope_sender: str | None = None,
                     mailbox: str | None = None) -> list[tuple[str, bool]]:
        """Store the message once per service it was sent to; returns (record id, duplicate).

        Returns only after the bytes and records are committed to the store: the caller
        may then confirm receipt (SMTP 250, IMAP \\Seen, HTTP 202).
        """
        sha = await self.attachments.blobs.put(raw)
        message_id = quick_message_id(raw)
        services = list(dict.fromkeys(recipients)) or [Recipient("", None)]
        out: list[tuple[str, bool]] = []
        for rcpt in services:
            key = f"{rcpt.service}|{message_id}" if message_id else f"{rcpt.service}|sha256:{sha}"
            doc = {"_id": str(uuid.uuid4()), "dedupe_key": key, "service": rcpt.service or None,
                   "token": rcpt.token, "source": source, "mailbox": mailbox,
                   "envelope_sender": envelope_sender, "raw_sha256": sha, "size": len(raw),
                   "message_id": message_id, "received_at": datetime.now(UTC),
                   "accepted_epoch": time.time(), "status": "pending", "attempts": 0}
            record_id, duplicate = await self.repo.record_inbound(doc)
            out.append((record_id, duplicate))
            if duplicate:
                MAIL.labels(source, "duplicate").inc()
                log.info("mail.duplicate", message_id=message_id, service=rcpt.service)
                continue
            if self._workers:
                self._queue.put_nowait((doc["_id"], doc, raw))
        return out

    async def accept_held(self, inbound_id: str, *, trust_sender: bool) -> bool:
        """An agent accepts a reply held as `unverified_sender`: it is processed again and
        reaches its card (`trust_sender` also makes the sender a participant from now on)."""
        async def run(uow) -> bool:
            return await self.repo.release_held(inbound_id, trust_sender, uow.session)

        if not await self.runtime.transact(run):
            return False
        if self._workers:
            self._queue.put_nowait((inbound_id, None, None))
        return True

    async def requeue(self, inbound_id: str) -> bool:
        """Move a quarantined mail back to pending (its raw bytes were kept)."""
        async def run(uow) -> bool:
            return await self.repo.requeue_quarantined(inbound_id, datetime.now(UTC),
                                                       uow.session)

        if not await self.runtime.transact(run):
            return False
        if self._workers:
            self._queue.put_nowait((inbound_id, None, None))
        return True

    # -- workers ----------------------------------------------------------------------------

    def start(self) -> None:
        workers = self.settings.mail_workers
        if workers == 0:
            return
        tasks = self.runtime.tasks
        self._retry_soon = False
        # a worker's wait is its queue; the worker primitive's idle wait is never reached
        for n in range(workers):
            self._workers.append(tasks.worker(f"mail-worker-{n}", self._work_round))
        retry = self.settings.mail_retry_seconds
        self._workers.append(tasks.worker("mail-sweeper", self._sweep_round, idle_start=retry,
                                          idle_max=max(retry, SWEEP_IDLE_MAX)))

    async def stop(self) -> None:
        await self.runtime.tasks.stop({w.name for w in self._workers})
        self._workers.clear()

    async def _work_round(self) -> float:
        # a record taken by a worker that then failed is not lost: it stays pending in the
        # store, where the sweeper finds it
        inbound_id, doc, raw = await self._queue.get()
        try:
            await self.process(inbound_id, doc, raw)
        except Deferred:
            return 0  # stays pending; the sweeper comes back to it
        except Exception as exc:  # store/broker trouble: the sweeper retries later
            log.warning("mail.process_failed", inbound_id=inbound_id, error=str(exc))
            await self._failed(inbound_id, exc)
        return 0

    async def _failed(self, inbound_id: str, exc: Exception) -> None:
        self._retry_soon = True
        with contextlib.suppress(Exception):
            doc = await self.repo.count_failed_attempt(inbound_id, str(exc)[:1000])
            if doc and doc["attempts"] >= MAX_ATTEMPTS:
                await self._quarantine(doc, "processing_failed", str(exc)[:1000], None)

    async def _sweep_round(self) -> float | None:
        """Picks up records left pending by a crash or a failed attempt.

        Fresh mail is handed to the workers in memory; the sweep is the fallback, so it
        looks every `mail_retry_seconds` while it finds work and backs off to a minute
        while there is none (an idle desk costs one indexed query a minute here).
        """
        found = 0
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.mail_retry_seconds)
            for inbound_id in await self.repo.pending_inbound_ids(cutoff, 200):
                found += 1
                try:
                    await self.process(inbound_id)
                except Deferred:
                    continue
                except Exception as exc:
                    await self._failed(inbound_id, exc)
        except Exception as exc:  # noqa: BLE001 (store away: look again later)
            log.warning("mail.sweep_failed", error=repr(exc)[:300])
        retry_soon, self._retry_soon = self._retry_soon, False
        # a worker just failed on a record: come back soon
        return self.settings.mail_retry_seconds if found or retry_soon else None

    # -- processing -------------------------------------------------------------------------

    async def process(self, inbound_id: str, doc: dict | None = None,
                      raw: bytes | None = None) -> None:
        if doc is None:
            doc = await self.repo.inbound(inbound_id)
        if doc is None or doc["status"] != "pending":
            return
        if doc["size"] > self.settings.max_message_bytes:
            # only IMAP can bring these (SMTP answers 552, HTTP 413): kept, not processed
            await self._quarantine(doc, "too_large", f"{doc['size']} bytes is over the limit "
                                   f"of {self.settings.max_message_bytes}", None)
            return
        if raw is None:
            raw = await self.attachments.blobs.get(doc["raw_sha256"])
        if raw is None:
            raise RuntimeError("raw bytes missing")
        try:
            # CPU-bound (a large mail takes a while): off the loop that answers SMTP and HTTP
            mail = await asyncio.to_thread(parse_mail, raw,
                                           envelope_sender=doc.get("envelope_sender"))
        except Unparseable as exc:
            await self._quarantine(doc, exc.reason, exc.detail, None)
            return
        try:
            await self._route(doc, mail, raw)
        except AlreadyDone:
            return

    async def _route(self, doc: dict, mail: ParsedMail, raw: bytes) -> None:
        if mail.desk_origin or (mail.message_id and await self.repo.sent_by_us(
                [mail.message_id])):
            return await self._finish(doc, mail, "ignored", reason="own_mail")
        if mail.bounces is not None:
            return await self._bounce(doc, mail)
        if mail.auto_reply:
            return await self._finish(doc, mail, "ignored",
                                      reason=f"auto_reply ({mail.auto_reply})")
        if doc.get("envelope_sender") == "":
            return await self._finish(doc, mail, "ignored", reason="null_sender")
        thread, threading_reason = await self._thread(doc, mail)
        age = (datetime.now(UTC) - doc["received_at"]).total_seconds()
        if thread is None and threading_reason.startswith(UNKNOWN_CARD) \
                and age < self.settings.reply_wait_seconds:
            raise Deferred()  # pending: the sweeper threads it once the card is known
        THREADING.labels(threading_reason.split(":")[0]).inc()
        if thread is not None:
            held = await self._hold(doc, mail, raw, thread)
            if held is not None:
                return await self._quarantine(doc, "unverified_sender", held, mail,
                                              card_id=thread["_id"], number=thread.get("number"),
                                              threading_reason=threading_reason)
            if doc.get("accepted_by"):
                threading_reason += " (unverified sender accepted by an agent)"
        refs, notes = await self._store_attachments(doc, mail)
        if thread is not None:
            return await self._reply(doc, mail, thread, threading_reason, refs, notes)
        return await self._new_request(doc, mail, threading_reason, refs, notes)

    async def _thread(self, doc: dict, mail: ParsedMail) -> tuple[dict | None, str]:
        """Find the request a message belongs to (intake.domain.threading); say why."""
        tokens = [doc.get("token")] + [
            r.token for r in (split_recipient(a, self.settings.inbound_domain)
                              for a in mail.recipients) if r is not None]
        clues = clues_of(tokens, self.settings.reply_token_secret.encode(), mail.in_reply_to,
                         mail.references, mail.subject, mail.sender)
        lookups = Lookups(
            by_number=await self.repo.threads_by_number(clues.numbers),
            by_message_id=await self.repo.thread_for_message_ids(list(clues.message_ids)))
        return choose_thread(clues, lookups)

    async def _store_attachments(self, doc: dict, mail: ParsedMail
                                 ) -> tuple[list[AttachmentRef], list[str]]:
        refs: list[AttachmentRef] = []
        notes: list[str] = []
        for n, att in enumerate(mail.attachments):
            try:
                refs.append(await self.attachments.store(
                    att.data, att.filename or f"attachment-{n + 1}", att.content_type,
                    source=EMAIL, attachment_id=f"{doc['_id']}-{n}"))
            except AttachmentTooLarge:
                REJECTED_INPUT.labels("intake", EMAIL, "attachment_too_large").inc()
                notes.append(f"[{att.filename or 'attachment'} ({len(att.data)} bytes) is over "
                             f"the attachment limit; it is kept in the original message]")
        return refs, notes

    async def _hold(self, doc: dict, mail: ParsedMail, raw: bytes, thread: dict) -> str | None:
        """Why this reply must wait for an agent (unverified From, not a participant)."""
        if doc.get("accepted_by"):
            return None  # an agent read it and accepted it
        check = await asyncio.to_thread(self.trust.check, raw, mail.sender,
                                        doc.get("envelope_sender"))
        # the portal's organisations once it has sent them; until then the settings'
        organisations = await self.repo.customer_organisations()
        participant = is_participant(thread, mail.sender, self.settings.organisations
                                     if organisations is None else organisations)
        return hold_reason(check, participant,
                           require_authenticated=self.settings.require_authenticated_sender,
                           sender=mail.sender, number=thread.get("number"))

    async def _others(self, mail: ParsedMail) -> list[str]:
        """People the mail was also addressed to (To/Cc), not us (our domain or an inbound
        address) and not the sender: they are copied on the request's replies."""
        domain = "@" + self.settings.inbound_domain.lower()
        ours = await self.inbound_routes()
        return [a for a in mail.recipients
                if a != mail.sender and not a.lower().endswith(domain)
                and a.lower() not in ours][:50]

    def _person(self, mail: ParsedMail) -> Person:
        # a name from a mail header is cleaned, not refused (the contract refuses control
        # characters, and the mail is still the customer's)
        return Person(email=mail.sender, name=clean_name(mail.sender_name))

    async def _reply(self, doc: dict, mail: ParsedMail, thread: dict, reason: str,
                     refs: list[AttachmentRef], notes: list[str]) -> None:
        text = "\n\n".join([trim_reply(mail.text), *notes]).strip()
        event = ReplyReceived(
            reply_id=doc["_id"], card_id=thread["_id"], channel=EMAIL,
            author=self._person(mail), text=text[:100_000], attachments=tuple(refs),
            received_at=doc["received_at"], channel_ref=mail.message_id,
            threading_reason=reason,
        )

        async def extra(uow) -> None:
            # a participant (or one an agent vouched for) may bring in whom they copied
            people = [mail.sender, *await self._others(mail)]
            if doc.get("accepted_by") and not doc.get("trust_sender"):
                people = [p for p in people if p in thread.get("participants", [])]
            await self.repo.add_to_thread(thread["_id"], people, mail.message_id, uow.session)
            await uow.emit(event)

        await self._finish(doc, mail, "reply", reason=reason, card_id=thread["_id"],
                           number=thread.get("number"), text=text, refs=refs, work=extra)

    async def _new_request(self, doc: dict, mail: ParsedMail, reason: str,
                           refs: list[AttachmentRef], notes: list[str]) -> None:
        service_id = doc.get("service")
        text = "\n\n".join([strip_signature(mail.text), *notes]).strip()
        title = mail.subject or (text.split("\n", 1)[0][:120] if text else "") or "(no subject)"
        request_id = doc["_id"]
        others = await self._others(mail)
        draft = RequestDraft(
            request_id=request_id, channel=EMAIL, service_id=service_id or "",
            requester=self._person(mail), subject=title[:500], text=text[:100_000],
            attachments=tuple(refs), received_at=doc["received_at"],
            channel_ref=mail.message_id, language=mail.language,
            # the service's access rule for the sender, as the portal and web API apply it
            access_address=mail.sender, message_id=mail.message_id,
            cc=tuple(others))
        outcome = self._outcome(mail, "request", reason=reason, request_id=request_id,
                                text=text, refs=refs, title=title)
        try:
            await accept_request(self.runtime, draft,
                                 also=self._finishing(doc, outcome))
        except UnknownService:
            return await self._quarantine(
                doc, "unknown_service",
                f"no active service {service_id!r} to open a request in", mail)
        except AccessRefused as refused:
            return await self._quarantine(doc, refused.reason, refused.refusal.message, mail)
        self._finished(doc, mail, outcome)

    async def _bounce(self, doc: dict, mail: ParsedMail) -> None:
        bounces = mail.bounces or []
        # Only a report about mail we really sent counts: otherwise anybody could mail a
        # forged DSN and stop a customer's notifications. Our Message-IDs are unguessable.
        ours = await self.repo.sent_by_us(list(mail.bounced_ids))
        domain = "@" + self.settings.inbound_domain.lower()
        age = (datetime.now(UTC) - doc["received_at"]).total_seconds()
        if not ours and any(i.lower().endswith(domain) for i in mail.bounced_ids) \
                and age < self.settings.bounce_wait_seconds:
            raise Deferred()

        async def extra(uow) -> None:
            for b in bounces if ours else []:
                if b.permanent:
                    await uow.emit(AddressBounced(
                        email=b.recipient, reason=f"{b.status} {b.diagnostic}".strip()[:2000]
                        or "bounced", permanent=True, at=doc["received_at"]))

        reason = ("bounce: " + ", ".join(f"{b.recipient} {b.status}" for b in bounces)
                  if bounces else "bounce without a machine-readable report")
        if not ours:
            reason += " (not about mail we sent: the address is not marked)"
        await self._finish(doc, mail, "bounce", reason=reason[:1000], work=extra)

    def _outcome(self, mail: ParsedMail, status: str, *, reason: str, **fields: Any) -> dict:
        """What the inbound record says once the message is decided."""
        refs = fields.pop("refs", None)
        record = {"status": status, "reason": reason, "processed_at": datetime.now(UTC),
                  "sender": mail.sender, "subject": mail.subject,
                  "in_reply_to": mail.in_reply_to, "defects": mail.defects, **fields}
        if status in ("request", "reply"):
            record["threading_reason"] = reason
        if refs is not None:
            record["attachments"] = [r.model_dump(mode="json") for r in refs]
        return record

    def _finishing(self, doc: dict, outcome: dict, work=None):
        """The transaction's part that records the outcome (once: AlreadyDone if another
        worker got there first), then does `work` (its events)."""
        async def run(uow) -> None:
            if not await self.repo.finish_inbound(doc["_id"], outcome, uow.session):
                raise AlreadyDone()
            if work is not None:
                await work(uow)

        return run

    def _finished(self, doc: dict, mail: ParsedMail, outcome: dict) -> None:
        MAIL.labels(doc["source"], outcome["status"]).inc()
        MAIL_SECONDS.observe(max(0.0, time.time() - doc.get("accepted_epoch", time.time())))
        log.info("mail.processed", inbound_id=doc["_id"], status=outcome["status"],
                 reason=outcome["reason"], message_id=mail.message_id)

    async def _finish(self, doc: dict, mail: ParsedMail, status: str, *, reason: str,
                      work=None, **fields: Any) -> None:
        outcome = self._outcome(mail, status, reason=reason, **fields)
        await self.runtime.transact(self._finishing(doc, outcome, work))
        self._finished(doc, mail, outcome)

    async def _quarantine(self, doc: dict, reason: str, detail: str,
                          mail: ParsedMail | None, **fields: Any) -> None:
        now = datetime.now(UTC)
        outcome = {"reason": reason, "detail": detail, "processed_at": now,
                   "sender": mail.sender if mail else None,
                   "subject": mail.subject if mail else None}
        item = {"inbound_id": doc["_id"], "channel": EMAIL, "source": doc["source"],
                "reason": reason, "detail": detail, "service": doc.get("service"),
                "raw_sha256": doc["raw_sha256"], "size": doc["size"],
                "message_id": doc.get("message_id"),
                "sender": mail.sender if mail else doc.get("envelope_sender"),
                "subject": mail.subject if mail else None, "at": now, **fields}

        async def run(uow) -> None:
            if not await self.repo.quarantine_inbound(doc["_id"], outcome, item, uow.session):
                raise AlreadyDone()

        try:
            await self.runtime.transact(run)
        except AlreadyDone:
            return
        QUARANTINED.labels(reason).inc()
        REJECTED_INPUT.labels("intake", EMAIL, reason).inc()
        MAIL.labels(doc["source"], "quarantined").inc()
        log.warning("mail.quarantined", inbound_id=doc["_id"], reason=reason, detail=detail)


def raw_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
