"""Polls per-service IMAP mailboxes (for teams that cannot forward mail to intake).

UID-based: each mailbox remembers its UIDVALIDITY and the last UID handed to intake. A
message is fetched with BODY.PEEK (not marking it read), stored through the same
`accept` as SMTP mail, and only then flagged \\Seen (or moved); the last UID is saved
after that. A crash at any point re-fetches at most a few messages, which the Message-ID
dedupe recognises, so nothing is lost or duplicated across restarts.
imaplib is blocking, so the network part runs in a worker thread.

Any number of intake replicas may run: a mailbox is polled under its lease
(`imap:<service>`, desk_runtime.lease), so one replica at a time polls it, and its
records are written with the lease's fencing token; a replica that dies mid-poll loses
the lease after its TTL and the next round of another replica takes the mailbox over.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ssl
import time
from datetime import UTC, datetime

from desk_runtime.lease import Lease, LeaseLost, Leases
from desk_runtime.logging import get_logger
from desk_runtime.secretbox import SecretBox
from desk_runtime.tasks import BackgroundTasks

from intake.mail.ingest import MailIngest, Recipient
from intake.metrics import IMAP_POLLS
from intake.repository import IntakeRepository

log = get_logger(__name__)
BATCH = 500


def _connect(box: dict) -> imaplib.IMAP4:
    timeout = 30
    if box.get("security") == "ssl":
        conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(box["host"], box["port"], timeout=timeout,
                                                ssl_context=ssl.create_default_context())
    else:
        conn = imaplib.IMAP4(box["host"], box["port"], timeout=timeout)
        if box.get("security") == "starttls":
            conn.starttls(ssl.create_default_context())
    conn.login(box["username"], box["password"])
    return conn


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _open(box: dict) -> tuple[imaplib.IMAP4, int, list[int]]:
    """Log in, select the folder; (connection, UIDVALIDITY, UIDs after the last one seen)."""
    conn = _connect(box)
    try:
        typ, _ = conn.select(_quote(box.get("folder") or "INBOX"))
        if typ != "OK":
            raise RuntimeError(f"cannot select folder {box.get('folder')!r}")
        uidvalidity = int((conn.response("UIDVALIDITY")[1] or [b"0"])[0])
        last = box.get("last_uid", 0) if box.get("uidvalidity") == uidvalidity else 0
        typ, data = conn.uid("SEARCH", None, f"UID {last + 1}:*")
        if typ != "OK":
            raise RuntimeError("UID SEARCH failed")
        # "n:*" always matches the newest message, even below n: filter
        uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last)[:BATCH]
        return conn, uidvalidity, uids
    except Exception:
        _close(conn)
        raise


def _fetch(conn: imaplib.IMAP4, uid: int) -> bytes | None:
    typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if typ != "OK":
        raise RuntimeError(f"UID FETCH {uid} failed")
    return next((p[1] for p in parts if isinstance(p, tuple)), None)  # None: expunged


def _mark_done(conn: imaplib.IMAP4, box: dict, uid: int) -> None:
    if box.get("after") == "move" and box.get("move_to"):
        typ, _ = conn.uid("COPY", str(uid), _quote(box["move_to"]))
        if typ != "OK":
            raise RuntimeError(f"cannot copy to {box['move_to']!r}")
        conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen \Deleted)")
        # UID EXPUNGE (UIDPLUS) removes only this message, not others someone flagged
        typ, _ = conn.uid("EXPUNGE", str(uid))
        if typ != "OK":
            conn.expunge()
    else:
        conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")


def _close(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        conn.logout()


class ImapPoller:
    def __init__(self, ingest: MailIngest, interval: float, secret: str):
        self.ingest = ingest
        self.secrets = SecretBox(secret, "imap")
        self.repo: IntakeRepository = ingest.repo
        self.leases: Leases = ingest.runtime.leases
        self.interval = interval
        self._tasks: BackgroundTasks | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_polled: dict[str, float] = {}  # mailbox → monotonic time of our last poll

    def start(self, tasks: BackgroundTasks) -> None:
        tasks.worker("imap-poller", self._round, idle_start=self.interval,
                     idle_max=max(self.interval, self.leases.ttl))
        self._tasks = tasks

    async def stop(self) -> None:
        if self._tasks is not None:
            await self._tasks.stop({"imap-poller"})

    async def _round(self) -> float:
        """Every enabled mailbox whose interval is up (and whose lease this replica gets)
        is polled. Rounds come every third of the lease's TTL: a held lease is renewed
        between polls, so one replica keeps a mailbox; if it dies, another takes the
        mailbox over within seconds rather than at the next interval."""
        now = time.monotonic()
        try:
            for box in await self.repo.mailboxes(enabled_only=True):
                name = f"imap:{box['_id']}"
                held = self.leases.held.get(name)
                last = self._last_polled.get(box["_id"])
                if held is not None and held.held and last is not None \
                        and now - last < self.interval:
                    await self.leases.acquire(name)  # keep it until the interval is up
                    continue
                await self.poll(box)
        except Exception as exc:  # noqa: BLE001 (store away: the next round retries)
            log.warning("imap.round_failed", error=repr(exc)[:300])
        return min(self.interval, self.leases.ttl / 3)

    async def poll(self, box: dict) -> dict:
        lock = self._locks.setdefault(box["_id"], asyncio.Lock())
        async with lock:
            # one replica at a time per mailbox: the others skip it while the lease is held
            lease = await self.leases.acquire(f"imap:{box['_id']}")
            if lease is None:
                IMAP_POLLS.labels("skipped").inc()
                return {"fetched": 0, "skipped": "another intake replica is polling it"}
            self._last_polled[box["_id"]] = time.monotonic()
            async with self.leases.keeping(lease):
                return await self._poll_held(box, lease)

    async def _poll_held(self, box: dict, lease: Lease) -> dict:
        # re-read under the lease: another poll may have moved last_uid on
        box = await self.repo.mailbox(box["_id"]) or box
        try:
            # the password is stored sealed; it is opened only for the login
            result = await self._poll({**box, "password": self.secrets.open(box["password"])},
                                      lease)
        except LeaseLost as exc:
            IMAP_POLLS.labels("lost_lease").inc()
            log.warning("imap.lease_lost", mailbox=box["_id"], error=str(exc))
            return {"fetched": 0, "error": str(exc)}
        except Exception as exc:
            IMAP_POLLS.labels("error").inc()
            log.warning("imap.poll_failed", mailbox=box["_id"], error=str(exc))
            with contextlib.suppress(LeaseLost):
                await self.repo.mailbox_polled(box["_id"], datetime.now(UTC),
                                               error=str(exc)[:500], lease=lease)
            return {"fetched": 0, "error": str(exc)[:500]}
        IMAP_POLLS.labels("ok").inc()
        return result

    async def _poll(self, box: dict, lease: Lease) -> dict:
        """One message at a time: fetched, stored, flagged, and the last UID saved, so a
        crash re-fetches at most one message (which the dedupe recognises)."""
        conn, uidvalidity, uids = await asyncio.to_thread(_open, box)
        accepted = duplicates = fetched = 0
        try:
            if box.get("uidvalidity") != uidvalidity:
                await self.repo.restart_mailbox(box["_id"], uidvalidity, lease=lease)
            for uid in uids:
                lease.check()  # taken over meanwhile: leave the rest to the new holder
                raw = await asyncio.to_thread(_fetch, conn, uid)
                if raw is not None:
                    fetched += 1
                    for _, dup in await self.ingest.accept(
                            raw, [Recipient(box["_id"], None)], source="imap",
                            mailbox=box["_id"]):
                        duplicates += dup
                        accepted += not dup
                    await asyncio.to_thread(_mark_done, conn, box, uid)
                await self.repo.advance_mailbox(box["_id"], uid, lease=lease)
        finally:
            await asyncio.to_thread(_close, conn)
        await self.repo.mailbox_polled(box["_id"], datetime.now(UTC), lease=lease)
        return {"fetched": fetched, "accepted": accepted, "duplicates": duplicates}
