"""Notify's e-mail sender against a real aiosmtpd server that requires SMTP AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from desk_runtime.mail import SmtpConfig
from notify.domain.templates import Rendered
from notify import senders
from notify.senders import EmailSender, SendError
from notify.settings import NotifySettings

from tests.support.infra import free_port

USER, PASSWORD = "desk", "s3cret"
# The test server takes AUTH without TLS (no certificate here); aiosmtpd warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str | None, list[str], bytes]] = []
        self.peers: list[tuple] = []  # the client connection each mail came over
        self.sessions: list = []  # the server side of each, to drop it
        self.refuse_next_with_421 = False
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_MAIL(self, srv, session, envelope, address, options):
                if server.refuse_next_with_421:
                    server.refuse_next_with_421 = False
                    return "421 4.3.2 Service shutting down, closing channel"
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(self, srv, session, envelope, address, options):
                if address.startswith("nobody@"):
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, srv, session, envelope):
                login = session.auth_data.login.decode() if session.auth_data else None
                with server.lock:
                    server.received.append((login, list(envelope.rcpt_tos), envelope.content))
                    server.peers.append(session.peer)
                    server.sessions.append(srv)
                return "250 OK"

        def authenticate(srv, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
                  and auth_data.password == PASSWORD.encode())
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticate, auth_required=True,
                                     auth_require_tls=False)


@pytest.fixture(scope="module")
def server():
    s = Server()
    s.controller.start()
    yield s
    s.controller.stop()


def sender(port: int, password: str) -> EmailSender:
    return EmailSender(NotifySettings(smtp=SmtpConfig(port=port, username=USER,
                                                      password=password),
                                      reply_token_secret="k", inbound_domain="desk.example"))


def delivery(recipient: str) -> dict:
    return {"_id": "n-1", "recipient": recipient, "audience": "customer", "channel": "email",
            "context": {"card": {"number": "SD-7"}, "service": {"id": "problem"},
                        "customer_name": "Anna"},
            "thread": {"in_reply_to": "root@desk.example", "references": ["root@desk.example"]}}


MAIL = Rendered(subject="[SD-7] Hello", text="plain body\n", html="<p>html body</p>")


def test_authenticated_smtp_delivers_with_headers(server):
    message_id = asyncio.run(sender(server.port, PASSWORD).send(delivery("anna@acme.example"),
                                                                MAIL))
    assert message_id == "n-1@desk.example"
    [(login, rcpts, raw)] = server.received
    assert login == USER and rcpts == ["anna@acme.example"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Message-ID"] == "<n-1@desk.example>"
    assert msg["In-Reply-To"] == "<root@desk.example>"
    assert msg["Reply-To"].startswith("problem+sd-7-")
    assert msg.get_body(("plain",)).get_content().strip() == "plain body"
    assert msg.get_body(("html",)).get_content().strip() == "<p>html body</p>"


def test_wrong_password_is_retried_not_dropped_and_refused_recipient_is_permanent(server):
    before = len(server.received)
    with pytest.raises(Exception) as err:
        asyncio.run(sender(server.port, "wrong").send(delivery("anna@acme.example"), MAIL))
    assert not (isinstance(err.value, SendError) and err.value.permanent)  # config: retry
    with pytest.raises(SendError) as refused:
        asyncio.run(sender(server.port, PASSWORD).send(delivery("nobody@acme.example"), MAIL))
    assert refused.value.permanent
    assert len(server.received) == before


def test_a_header_that_cannot_be_built_fails_at_once_instead_of_being_retried(server):
    """A name with a line break (stored before contracts refused it) makes `formataddr`
    raise on every attempt: it is a permanent failure and nothing is sent."""
    before = len(server.received)
    broken = delivery("anna@acme.example")
    broken["context"]["customer_name"] = "Anna\r\nBcc: everyone@acme.example"
    with pytest.raises(SendError) as err:
        asyncio.run(sender(server.port, PASSWORD).send(broken, MAIL))
    assert err.value.permanent
    assert len(server.received) == before


def test_mails_in_a_row_share_one_connection_and_a_dropped_one_is_replaced(server):
    """A kept connection carries the next mails; one the server dropped while idle, or
    that it answers 421 (closing), is replaced once and the mail still goes out."""
    before = len(server.received)

    async def run() -> None:
        s = sender(server.port, PASSWORD)
        for n in range(3):
            await s.send(delivery(f"row{n}@acme.example"), MAIL)
        assert len(set(server.peers[before:])) == 1  # one connection for all three

        # the server drops the idle connection
        server.controller.loop.call_soon_threadsafe(server.sessions[-1].transport.close)
        await asyncio.sleep(0.3)
        await s.send(delivery("after-drop@acme.example"), MAIL)
        # the server is closing the connection as the next mail starts
        server.refuse_next_with_421 = True
        await s.send(delivery("after-421@acme.example"), MAIL)
        await s.close()

    asyncio.run(run())
    mails = server.received[before:]
    assert [rcpts for _, rcpts, _ in mails] == [
        ["row0@acme.example"], ["row1@acme.example"], ["row2@acme.example"],
        ["after-drop@acme.example"], ["after-421@acme.example"]]  # each once
    peers = server.peers[before:]
    assert peers[3] != peers[2] and peers[4] != peers[3]  # a new connection each time


def test_senders_at_once_each_have_a_connection_and_idle_ones_are_closed(server, monkeypatch):
    monkeypatch.setattr(senders, "SMTP_IDLE_SECONDS", 0.2)
    before = len(server.received)

    async def run() -> None:
        s = sender(server.port, PASSWORD)
        await asyncio.gather(*(s.send(delivery(f"both{n}@acme.example"), MAIL)
                               for n in range(2)))
        assert len(s.connections._idle) == 2  # none waited for the other's connection
        await asyncio.sleep(0.5)
        assert s.connections._idle == []  # closed once idle
        await s.send(delivery("later@acme.example"), MAIL)  # a new one, when mail flows
        await s.close()
        assert s.connections._idle == []

    asyncio.run(run())
    assert len(server.received) - before == 3
    assert len(set(server.peers[before:])) == 3
