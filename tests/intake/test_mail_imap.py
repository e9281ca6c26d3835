"""E-mail polled from a real IMAP server (Debian's dovecot): the corpus, restarts, no dupes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.intake.corpus_expectations import EXPECT, ORIGINALS, REPLIES, check
from tests.intake.helpers import card, corpus, inbound, new_tag, processed_raw, request_number
from tests.support.imap import DovecotServer, dovecot_available
from tests.support.stack import auth, mongo_find, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")]
USER, PASSWORD = "support@acme.example", "imap-secret"
LEGAL = "legal@acme.example"


@pytest.fixture(scope="module")
def imap():
    with DovecotServer() as server:
        # all users up front: dovecot notices passwd-file changes by mtime (1 s resolution)
        server.add_user(USER, PASSWORD)
        server.add_user(LEGAL, "legal-secret")
        yield server


def configure(desk, imap, service: str, user: str, **extra) -> None:
    r = httpx.put(f"{desk['intake'].url}/v1/mailboxes/{service}", headers=auth(desk), timeout=10,
                  json={"host": "127.0.0.1", "port": imap.port, "security": "none",
                        "username": user, "password": imap.users[user], **extra})
    assert r.status_code == 200, r.text
    assert "password" not in r.json()
    # stored sealed, never in clear
    [stored] = mongo_find(desk.mongo_url, f"{desk.namespace}_intake", "mailboxes",
                          {"_id": service})
    assert stored["password"].startswith("v1:") and imap.users[user] not in stored["password"]


def poll(desk, service: str) -> dict:
    r = httpx.post(f"{desk['intake'].url}/v1/mailboxes/{service}/poll", headers=auth(desk),
                   timeout=60)
    assert r.status_code == 200, r.text
    assert "error" not in r.json(), r.json()
    return r.json()


def imap_deliverable(name: str) -> bool:
    # IMAP APPEND cannot carry NUL bytes (without the BINARY extension): that message
    # can only arrive by SMTP/HTTP.
    return b"\x00" not in corpus(name, "x")


@pytest.fixture(scope="module")
def imap_corpus(desk, imap):
    tag = new_tag()
    configure(desk, imap, "question", USER)
    originals = [n for n in ORIGINALS if imap_deliverable(n)]
    for name in originals:
        imap.append(USER, corpus(name, tag))
    # a poll now; a mailbox just saved may also be polled in the background meanwhile and
    # take some of them first, so every message is then found processed, whichever took it
    poll(desk, "question")
    records = {name: processed_raw(desk, corpus(name, tag)) for name in originals}
    cards = {name: card(desk, request_number(desk, rec["request_id"]))["id"]
             for name, rec in records.items() if rec["status"] == "request"}
    for name in REPLIES:
        imap.append(USER, corpus(name, tag))
    poll(desk, "question")
    records |= {name: processed_raw(desk, corpus(name, tag)) for name in REPLIES}
    return records, cards, tag


@pytest.mark.parametrize("name", sorted(n for n in EXPECT if imap_deliverable(n)))
def test_corpus_message_via_imap(imap_corpus, name):
    records, cards, _ = imap_corpus
    check(name, records[name], cards)
    assert records[name]["source"] == "imap"
    if records[name]["status"] == "request":
        assert records[name]["service"] == "question"


def test_processed_mail_is_seen_and_restart_fetches_only_new(desk, imap, imap_corpus):
    records, _, tag = imap_corpus
    flags = imap.flags(USER)
    assert flags and all("\\Seen" in f for f in flags.values()), flags
    before = len(inbound(desk, limit=500, mailbox="question"))

    restarted_at = datetime.now(UTC)
    desk["intake"].kill()
    desk["intake"].start()
    # the restarted intake polls every mailbox once at start; let that poll finish first,
    # so the explicit poll below is the one that meets the new message
    wait_until(lambda: any(
        b["id"] == "question" and b.get("last_poll_at")
        and datetime.fromisoformat(b["last_poll_at"]) > restarted_at
        for b in httpx.get(f"{desk['intake'].url}/v1/mailboxes", headers=auth(desk),
                           timeout=10).json()["items"]))
    late = corpus("01-plain-utf8.eml", tag + "late")
    imap.append(USER, late)
    # the restarted intake continues after the last UID: only the new message is fetched
    assert poll(desk, "question")["fetched"] == 1
    assert processed_raw(desk, late)["status"] == "request"
    assert len(inbound(desk, limit=500, mailbox="question")) == before + 1

    # a message marked unread again by someone is not taken twice
    conn = imap.connect(USER)
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "-FLAGS", r"(\Seen)")
    conn.logout()
    assert poll(desk, "question")["fetched"] == 0
    assert len(inbound(desk, limit=500, mailbox="question")) == before + 1


def test_move_mode_and_bad_credentials(desk, imap):
    user = LEGAL
    configure(desk, imap, "legal-document", user, after="move", move_to="Processed")
    tag = new_tag()
    raw = corpus("02-multipart-alternative.eml", tag)
    imap.append(user, raw)
    assert poll(desk, "legal-document")["accepted"] == 1
    assert processed_raw(desk, raw)["status"] == "request"
    assert imap.count(user) == 0 and imap.count(user, "Processed") == 1

    r = httpx.put(f"{desk['intake'].url}/v1/mailboxes/legal-document", headers=auth(desk),
                  timeout=10, json={"host": "127.0.0.1", "port": imap.port, "security": "none",
                                    "username": user, "password": "wrong"})
    assert r.status_code == 200
    result = httpx.post(f"{desk['intake'].url}/v1/mailboxes/legal-document/poll",
                        headers=auth(desk), timeout=60).json()
    assert result["fetched"] == 0 and "error" in result
    listing = httpx.get(f"{desk['intake'].url}/v1/mailboxes", headers=auth(desk),
                        timeout=10).json()["items"]
    box = next(b for b in listing if b["id"] == "legal-document")
    assert box["last_error"] and "password" not in box
    # mailbox administration needs the admin token
    assert httpx.get(f"{desk['intake'].url}/v1/mailboxes", timeout=10).status_code == 401
