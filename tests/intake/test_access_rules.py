"""A service's access rule holds on every channel: web API, e-mail, Telegram and the portal.

The customer groups a rule names are the portal's, changed through its admin API without
a restart; intake learns them from `customer.groups_changed`.
"""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest

from tests.intake.helpers import processed, smtp_send, wait_for_catalog
from tests.portal.helpers import PORTAL_ENV, new_email, sign_in
from tests.support.fake_telegram import FakeTelegram
from tests.support.mail import MailSink
from tests.support.metrics import sample_sum
from tests.support.stack import Stack, auth, cleanup, wait_until

pytestmark = pytest.mark.slow
TOKEN = "654321:ACCESS-token"
CHAT = 5151
SERVICE = "legal-document"
TO = f"{SERVICE}@desk.localhost"
LAWYER = "lawyer@acme.example"


@pytest.fixture(scope="module")
def tg():
    with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def sink():
    with MailSink() as s:
        yield s


@pytest.fixture(scope="module")
def desk(mongo_url, amqp_url, tg, sink, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("access"), smtp_port=sink.port,
              extra={"portal": dict(PORTAL_ENV),
                     "intake": {"INTAKE_TELEGRAM__MODE": "polling",
                                "INTAKE_TELEGRAM__TOKEN": TOKEN,
                                "INTAKE_TELEGRAM__API_BASE": tg.base_url,
                                "INTAKE_TELEGRAM__POLL_TIMEOUT_SECONDS": "1"}})
    s.start(("boards", "intake", "portal"))
    wait_for_catalog(s)
    # the service is for the legal team only (a group the portal defines)
    items = httpx.get(f"{s['boards'].url}/v1/services", headers=auth(s)).json()["items"]
    legal = next(i["service"] for i in items if i["service"]["id"] == SERVICE)
    r = httpx.put(f"{s['boards'].url}/v1/services/{SERVICE}", headers=auth(s),
                  json={**legal, "access": {"groups": ["legal-team"]}})
    assert r.status_code in (200, 201), r.text
    # intake has the restricted definition once an unvouched request for it is refused
    wait_until(lambda: api(s, LAWYER, as_portal=False).status_code == 403)
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


def api(desk: Stack, email: str, *, as_portal: bool) -> httpx.Response:
    headers = {"Authorization": f"Bearer {Stack.PORTAL_TOKEN}"} if as_portal else {}
    return httpx.post(f"{desk['intake'].url}/v1/requests", headers=headers, timeout=10, json={
        "service": SERVICE, "requester": {"email": email}, "subject": "An NDA, please",
        "fields": {"document": "power-of-attorney"}})


def groups_in_intake(desk: Stack) -> dict:
    r = httpx.get(f"{desk['intake'].url}/v1/access/groups", headers=auth(desk), timeout=10)
    r.raise_for_status()
    return r.json()


def set_group(desk: Stack, name: str, members: dict) -> dict:
    r = httpx.put(f"{desk['portal'].url}/v1/access/groups/{name}", json=members,
                  headers=auth(desk), timeout=10)
    assert r.status_code == 200, r.text
    revision = r.json()["revision"]
    wait_until(lambda: groups_in_intake(desk)["revision"] >= revision)
    return r.json()


def mail(sender: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, TO, subject
    msg["Message-ID"] = make_msgid(domain="acme.example")
    msg.set_content("Please prepare it.")
    return msg


def deliver(desk: Stack, msg: EmailMessage) -> dict:
    def accepted() -> bool:
        try:
            smtp_send(desk, msg.as_bytes(), TO)
            return True
        except smtplib.SMTPRecipientsRefused:
            return False
    wait_until(accepted)
    return processed(desk, msg["Message-ID"].strip("<>"))


def test_the_groups_are_the_portals_and_seeded_from_its_settings(desk):
    # PORTAL_GROUPS seeded the stored configuration at the first start; intake has a copy
    groups = wait_until(lambda: groups_in_intake(desk)["groups"] or None)
    assert groups == {"legal-team": {"domains": [], "addresses": [LAWYER]}}
    assert httpx.get(f"{desk['portal'].url}/v1/access", timeout=10).status_code == 401
    assert httpx.get(f"{desk['intake'].url}/v1/access/groups", timeout=10).status_code == 401
    stored = httpx.get(f"{desk['portal'].url}/v1/access", headers=auth(desk), timeout=10).json()
    assert stored["groups"]["legal-team"]["addresses"] == [LAWYER]
    assert "acme.example" in stored["allow"]["domains"]


def test_the_web_api_refuses_a_restricted_service_to_a_caller_it_cannot_trust(desk):
    before = sample_sum(desk["intake"].url, "desk_rejected_input_total",
                        channel="api", reason="identity_required")
    # an unauthenticated caller's requester address is only a claim, even the lawyer's
    r = api(desk, LAWYER, as_portal=False)
    assert r.status_code == 403
    assert r.json()["details"]["reason"] == "identity_required"
    assert "cannot tell who is asking" in r.json()["message"]
    assert sample_sum(desk["intake"].url, "desk_rejected_input_total",
                      channel="api", reason="identity_required") > before
    # the portal vouches for the address it signed in: then the group decides
    outsider = api(desk, new_email("clerk"), as_portal=True)
    assert outsider.status_code == 403
    assert outsider.json()["details"]["reason"] == "sender_not_allowed"
    assert api(desk, LAWYER, as_portal=True).status_code == 202
    forged = httpx.post(f"{desk['intake'].url}/v1/requests", timeout=10,
                        headers={"Authorization": "Bearer guess"}, json={
                            "service": SERVICE, "requester": {"email": LAWYER},
                            "subject": "x", "fields": {"document": "power-of-attorney"}})
    assert forged.status_code == 403


def test_mail_from_outside_the_group_is_quarantined_until_the_group_admits_it(desk, mongo_url):
    clerk = new_email("paralegal")
    first = deliver(desk, mail(clerk, f"Contract review {uuid.uuid4().hex[:6]}"))
    assert first["status"] == "quarantined" and first["reason"] == "sender_not_allowed"
    assert clerk in first["detail"]
    assert deliver(desk, mail(LAWYER, "Power of attorney"))["status"] == "request"
    # the portal's admin adds the paralegal: no restart anywhere, the next mail is a request
    set_group(desk, "legal-team", {"addresses": [LAWYER, clerk]})
    later = deliver(desk, mail(clerk, f"Second try {uuid.uuid4().hex[:6]}"))
    assert later["status"] == "request"


def test_telegram_does_not_offer_or_accept_a_restricted_service(desk, tg):
    tg.push_update(tg.message_update(CHAT, "/start"))  # a Russian-speaking user
    menu = wait_until(lambda: tg.messages_to(CHAT))[-1]
    offered = [b["callback_data"] for row in menu["reply_markup"]["inline_keyboard"]
               for b in row]
    assert "svc:question" in offered and f"svc:{SERVICE}" not in offered
    # a button from an old menu (or a crafted one) is answered in the dialog, with why
    tg.push_update(tg.callback_update(CHAT, f"svc:{SERVICE}", message=menu))
    answer = wait_until(lambda: len(m := tg.messages_to(CHAT)) >= 2 and m[-1])
    assert "доступна не всем клиентам" in answer["text"] and "порталом" in answer["text"]
    # no dialog was started: a description now becomes no request
    tg.push_update(tg.message_update(CHAT, "Моя доверенность\nпожалуйста"))
    tg.push_update(tg.message_update(CHAT, "/help"))
    wait_until(lambda: "/my" in tg.messages_to(CHAT)[-1]["text"])  # the help: all handled
    assert not any("принято" in m["text"] for m in tg.messages_to(CHAT))


def test_the_portal_follows_a_group_change_without_a_restart(desk, sink):
    newcomer = new_email("newcomer")
    client = sign_in(desk, sink, newcomer)
    assert client.get(f"/services/{SERVICE}/new").status_code == 404
    set_group(desk, "legal-team", {"addresses": [LAWYER], "domains": ["acme.example"]})
    wait_until(lambda: client.get(f"/services/{SERVICE}/new").status_code == 200)
    # and the sign-in allowlist too: a domain let in now gets its code
    outsider = new_email("ext", "contoso.example")
    r = httpx.get(f"{desk['portal'].url}/v1/access", headers=auth(desk), timeout=10).json()
    allow = r["allow"]
    allow["domains"].append("contoso.example")
    assert httpx.put(f"{desk['portal'].url}/v1/access/allow", json=allow, headers=auth(desk),
                     timeout=10).status_code == 200
    sign_in(desk, sink, outsider)
