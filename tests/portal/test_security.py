"""Attempts to break the portal: sign-in codes, look-alike domains, CSRF, others' requests."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from desk_contracts.signed_link import sign_link
from pymongo import AsyncMongoClient

from tests.portal.helpers import (
    ask_code,
    card_by_title,
    client_ip,
    close_card,
    code_from,
    csrf_of,
    enter_code,
    new_email,
    portal_client,
    sign_in,
    submit,
    wait_in_portal,
)
from tests.support.stack import Stack, auth, wait_until

pytestmark = pytest.mark.slow

# a low cap per address, so flooding it takes few requests; and no PORTAL_PUBLIC_URL (a
# laptop's development mode), where links used to follow whatever Host a request named
STACK_ENV = {"portal": {"PORTAL_CODES_PER_ADDRESS_PER_HOUR": "8", "PORTAL_ENV": "development",
                        "PORTAL_PUBLIC_URL": ""}}


def portal_db(mongo_url: str, stack: Stack, coll: str, op: str, *args):
    async def run():
        client = AsyncMongoClient(mongo_url, tz_aware=True)
        try:
            c = client[f"{stack.namespace}_portal"][coll]
            result = getattr(c, op)(*args)
            if op == "find":
                return [d async for d in result]
            return await result
        finally:
            await client.close()
    return asyncio.run(run())


@pytest.fixture(scope="module")
def owner(stack, mail):
    """A customer with one open and one closed request, and a stranger who may not see them."""
    client = sign_in(stack, mail, new_email("owner"))
    title = f"Printer jam {uuid.uuid4().hex[:6]}"
    assert submit(client, "problem", title, {"system": "crm"}).status_code == 303
    card = card_by_title(stack, title)
    closed_title = f"Old thing {uuid.uuid4().hex[:6]}"
    assert submit(client, "question", closed_title).status_code == 303
    closed = card_by_title(stack, closed_title)
    close_card(stack, closed)
    wait_in_portal(client, card["id"])
    wait_in_portal(client, closed["id"], "Done")
    return {"client": client, "card": card, "closed": closed}


def test_another_customers_request_is_404_on_every_route(stack, mail, owner):
    stranger = sign_in(stack, mail, new_email("stranger"))
    csrf = csrf_of(stranger.get("/").text)
    for card in (owner["card"], owner["closed"]):
        cid = card["id"]
        assert owner["client"].get(f"/requests/{cid}").status_code == 200
        assert stranger.get(f"/requests/{cid}").status_code == 404
        assert stranger.get(f"/requests/{uuid.uuid4()}").status_code == 404
        for route, data in ((f"/requests/{cid}/reply", {"text": "hi"}),
                            (f"/requests/{cid}/rating", {"score": "1"}),
                            (f"/requests/{cid}/follow-up", {"text": "again"})):
            r = stranger.post(route, data={"csrf": csrf, **data})
            assert r.status_code == 404, route
        # the rating link needs the signed token of that very card
        assert stranger.get(f"/requests/{cid}/rate?score=1&t=1.x").status_code == 404
        other = sign_link("rate", str(uuid.uuid4()), Stack.LINK_SECRET.encode(),
                          datetime.now(UTC) + timedelta(days=1))
        assert stranger.get(f"/requests/{cid}/rate?score=1&t={other}").status_code == 404
        assert stranger.post(f"/requests/{cid}/rate", data={"t": other, "score": "1",
                                                            "csrf": "x"}).status_code == 404
    home = stranger.get("/").text
    assert owner["card"]["number"] not in home
    # nothing reached boards from the stranger
    comments = httpx.get(f"{stack['boards'].url}/v1/cards/{owner['card']['id']}/comments",
                         headers=auth(stack)).json()["items"]
    assert not any(c.get("text") == "hi" for c in comments)


def test_organisation_members_see_each_others_requests(stack, mail):
    alice = sign_in(stack, mail, new_email("alice", "globex.example"))
    title = f"Globex VPN {uuid.uuid4().hex[:6]}"
    assert submit(alice, "question", title).status_code == 303
    card = card_by_title(stack, title)
    bob = sign_in(stack, mail, new_email("bob", "globex.example"))
    wait_in_portal(bob, card["id"])
    assert card["number"] in bob.get("/").text
    outsider = sign_in(stack, mail, new_email("carol"))
    assert outsider.get(f"/requests/{card['id']}").status_code == 404


def test_code_guessing_stops_after_five(stack, mail):
    email = new_email("guess")
    client = portal_client(stack)
    assert ask_code(client, email).status_code == 303
    code = code_from(mail, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        r = enter_code(client, wrong)
        assert r.status_code == 400 and "desk_portal_session" not in client.cookies
    r = enter_code(client, code)  # the right code, but too late
    assert r.status_code == 400
    assert "no longer be used" in r.text
    assert client.get("/").status_code == 303  # still signed out


def test_reused_code_fails(stack, mail):
    email = new_email("reuse")
    client = portal_client(stack)
    ask_code(client, email)
    code = code_from(mail, email)
    attempt = client.cookies["desk_portal_attempt"]
    page = client.get("/login/code")
    token = csrf_of(page.text)
    first = client.post("/login/code", data={"code": code, "csrf": token})
    assert first.status_code == 303
    replay = portal_client(stack)  # the same attempt cookie, the same code, once more
    replay.cookies.set("desk_portal_attempt", attempt, path="/login")
    second = replay.post("/login/code", data={"code": code, "csrf": token})
    assert second.status_code == 400 and "no longer be used" in second.text
    assert "desk_portal_session" not in second.cookies


def test_expired_code_fails(stack, mail, mongo_url):
    email = new_email("late")
    client = portal_client(stack)
    ask_code(client, email)
    code = code_from(mail, email)
    # ten minutes pass
    portal_db(mongo_url, stack, "login_attempts", "update_many", {"email": email},
              {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    r = enter_code(client, code)
    assert r.status_code == 400 and "no longer be used" in r.text


def test_code_is_bound_to_its_sign_in_attempt(stack, mail):
    email = new_email("bound")
    victim = portal_client(stack)
    ask_code(victim, email)
    code = code_from(mail, email)
    attacker = portal_client(stack)
    ask_code(attacker, email)  # the attacker's own attempt for the same address
    r = enter_code(attacker, code)
    assert r.status_code == 400
    assert enter_code(victim, code).status_code == 303


def test_codes_are_stored_only_hashed(stack, mail, mongo_url):
    email = new_email("hash")
    client = portal_client(stack)
    ask_code(client, email)
    code = code_from(mail, email)
    [attempt] = portal_db(mongo_url, stack, "login_attempts", "find", {"email": email})
    assert code not in str(attempt)
    assert client.cookies["desk_portal_attempt"] not in str(attempt)
    enter_code(client, code)
    session = client.cookies["desk_portal_session"]
    stored = portal_db(mongo_url, stack, "sessions", "find", {"email": email})
    assert stored and session not in str(stored)


@pytest.mark.parametrize("email", ["mallory@acme.example.evil.io", "mallory@evil-acme.example",
                                   "mallory@evilacme.example", "mallory@partner.example.evil.io",
                                   "mallory@gmail.example"])
def test_look_alike_domains_get_no_code(stack, mail, email):
    client = portal_client(stack)
    r = ask_code(client, email)
    assert r.status_code == 303  # the same answer as for anybody
    # the positive signal: a code asked afterwards for an allowed address has arrived, so
    # a code for the look-alike, had one been sent, would have been on its way before it
    control = new_email("control")
    ask_code(portal_client(stack), control)
    mail.wait_for(control)
    assert mail.to(email) == []


def test_subdomain_wildcard_and_single_address_are_let_in(stack, mail):
    for email in (new_email("sub", "it.partner.example"), "freelancer@gmail.example"):
        sign_in(stack, mail, email)


def _normalise(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


def test_same_answer_for_known_and_unknown_addresses(stack, mail):
    ip = client_ip()
    answers = []
    for email in ("someone@acme.example", "someone@unknown.example"):
        client = portal_client(stack, ip=ip)
        r = ask_code(client, email)
        page = client.get("/login/code")
        answers.append((r.status_code, r.headers.get("location"), r.text,
                        sorted(r.cookies.keys()), page.status_code,
                        _normalise(page.text).replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    assert mail.wait_for("someone@acme.example")
    assert mail.to("someone@unknown.example") == []


def test_code_requests_are_limited_per_address_and_client_and_per_client(stack, mail):
    email = new_email("limit")
    ip = client_ip()
    for _ in range(5):
        assert ask_code(portal_client(stack, ip=ip), email).status_code == 303
    assert ask_code(portal_client(stack, ip=ip), email).status_code == 429
    mail.wait_for(email, count=5)
    ip = client_ip()
    statuses = [ask_code(portal_client(stack, ip=ip), new_email("many")).status_code
                for _ in range(21)]
    assert statuses[:20] == [303] * 20 and statuses[20] == 429


def test_a_flood_from_elsewhere_does_not_lock_the_customer_out(stack, mail):
    victim = new_email("victim")
    attacker = client_ip()
    flood = [ask_code(portal_client(stack, ip=attacker), victim).status_code for _ in range(8)]
    assert flood == [303] * 5 + [429] * 3
    # the customer, from their own address, still gets a code and signs in
    client = portal_client(stack)
    assert ask_code(client, victim).status_code == 303
    assert enter_code(client, code_from(mail, victim, 6)).status_code == 303
    assert client.get("/").status_code == 200


def test_refused_code_requests_do_not_count(stack, mail):
    ip = client_ip()
    email = new_email("refused")
    statuses = [ask_code(portal_client(stack, ip=ip), email).status_code for _ in range(15)]
    assert statuses == [303] * 5 + [429] * 10
    # the ten refusals took nothing from this client's allowance of 20 codes an hour
    others = [ask_code(portal_client(stack, ip=ip), new_email("other")).status_code
              for _ in range(15)]
    assert others == [303] * 15


def test_a_burst_of_parallel_code_requests_gets_exactly_its_allowance(stack, mail):
    from concurrent.futures import ThreadPoolExecutor

    ip, email = client_ip(), new_email("burst")
    clients = [portal_client(stack, ip=ip) for _ in range(15)]
    forms = [csrf_of(c.get("/login").text) for c in clients]

    def post(i: int) -> int:
        return clients[i].post("/login", data={"email": email, "csrf": forms[i],
                                               "next": "/"}).status_code
    with ThreadPoolExecutor(15) as pool:
        statuses = list(pool.map(post, range(15)))
    assert sorted(statuses) == [303] * 5 + [429] * 10
    assert len(mail.wait_for(email, count=5)) == 5


def test_a_browser_that_signed_in_before_gets_codes_while_the_address_is_flooded(stack, mail):
    victim = new_email("known")
    known = sign_in(stack, mail, victim)
    device = known.cookies.get("desk_portal_device", path="/login")
    assert device
    # a flood from many addresses uses up the address's allowance for unknown browsers
    cap = int(STACK_ENV["portal"]["PORTAL_CODES_PER_ADDRESS_PER_HOUR"])
    flood = [ask_code(portal_client(stack), victim).status_code for _ in range(cap)]
    assert flood == [303] * (cap - 1) + [429]  # the sign-in above took one
    assert ask_code(portal_client(stack), victim).status_code == 429
    # the customer's own browser, which proved itself by signing in, is not held up
    again = portal_client(stack)
    again.cookies.set("desk_portal_device", device, path="/login")
    assert ask_code(again, victim).status_code == 303
    # its code is the (cap + 1)th mail: the first sign-in, cap - 1 flooded, this one
    assert enter_code(again, code_from(mail, victim, cap + 1)).status_code == 303
    # the proof is bound to the address: it does not help with somebody else's
    stranger = portal_client(stack)
    stranger.cookies.set("desk_portal_device", device, path="/login")
    other = new_email("other-victim")
    for _ in range(cap):
        ask_code(portal_client(stack), other)
    assert ask_code(stranger, other).status_code == 429


def test_sign_in_link_comes_from_configuration_never_from_headers(stack, mail):
    email = new_email("host")
    client = portal_client(stack)
    page = client.get("/login")
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Proto": "https"}
    r = client.post("/login", data={"email": email, "csrf": csrf_of(page.text), "next": "/"},
                    headers=forged)
    assert r.status_code == 303
    body = mail.wait_for(email)[0].get_body(("plain",)).get_content()
    links = re.findall(r"\S+/login/code\?c=\d{6}", body)
    assert links and all(link.startswith(stack.url("portal") + "/login/code?c=")
                         for link in links), body
    assert "evil.example" not in body


def test_portal_refuses_to_start_in_production_without_its_public_url(stack, tmp_path):
    import os
    import subprocess
    import sys

    from tests.support.infra import free_port
    from tests.support.stack import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {k: v for k, v in stack.env_for("portal").items()
            if k not in ("PORTAL_PUBLIC_URL", "PORTAL_ENV")}  # production, no address
    env["PORTAL_HTTP_PORT"] = str(free_port())
    proc = subprocess.Popen([sys.executable, "-m", "portal"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it started and served: the finding is open
        proc.kill()
        proc.communicate()
        pytest.fail("the portal started without PORTAL_PUBLIC_URL in production")
    assert proc.returncode != 0
    assert b"PORTAL_PUBLIC_URL is required in production" in err


def test_portal_and_workspace_sessions_live_side_by_side_on_one_host(stack, mail):
    """Cookies ignore ports: a browser sends the portal's and the board's cookies to both."""
    customer = sign_in(stack, mail, new_email("both"))
    board = httpx.Client(base_url=stack["boards"].url, timeout=10)
    r = board.post("/v1/session", json={"token": Stack.ADMIN_TOKEN})
    assert r.status_code == 200, r.text
    # one host, one cookie jar: what the board set lands next to the portal's cookies
    for cookie in board.cookies.jar:
        customer.cookies.jar.set_cookie(cookie)
        board.cookies.jar.set_cookie(cookie)
    for cookie in list(customer.cookies.jar):
        board.cookies.jar.set_cookie(cookie)
    assert customer.get("/").status_code == 200  # still signed in to the portal
    assert board.get("/v1/session").status_code == 200  # and to the board
    names = {c.name for c in customer.cookies.jar}
    assert {"desk_portal_session", "desk_agent_session"} <= names


def test_posts_without_csrf_token_fail(stack, mail, owner):
    client = owner["client"]
    cid = owner["card"]["id"]
    for route, data in (("/services/question/new", {"subject": "x", "text": "y"}),
                        (f"/requests/{cid}/reply", {"text": "forged"}),
                        (f"/requests/{owner['closed']['id']}/rating", {"score": "1"}),
                        (f"/requests/{owner['closed']['id']}/follow-up", {"text": "forged"}),
                        ("/settings/notifications", {"agent_reply:email": "1"}),
                        ("/logout", {})):
        for token in (None, "wrong-token"):
            body = dict(data) | ({"csrf": token} if token else {})
            r = client.post(route, data=body)
            assert r.status_code == 403, (route, r.status_code)
    assert client.get("/").status_code == 200  # still signed in: the forged sign-out failed
    anonymous = portal_client(stack)
    anonymous.get("/login")
    assert anonymous.post("/login", data={"email": new_email()}).status_code == 403


def test_rating_link_get_never_votes_and_post_needs_its_token(stack, owner, mongo_url):
    cid = owner["closed"]["id"]
    token = sign_link("rate", cid, Stack.LINK_SECRET.encode(),
                      datetime.now(UTC) + timedelta(days=30))
    anonymous = portal_client(stack)
    page = anonymous.get(f"/requests/{cid}/rate", params={"score": 5, "t": token})
    assert page.status_code == 200 and owner["closed"]["number"] in page.text
    # a vote is written before its page is answered, so the answer is the signal
    assert portal_db(mongo_url, stack, "ratings", "find", {"_id": cid}) == []
    bad = anonymous.post(f"/requests/{cid}/rate", data={"t": token, "score": "5",
                                                        "csrf": "guess"})
    assert bad.status_code == 403
    expired = sign_link("rate", cid, Stack.LINK_SECRET.encode(),
                        datetime.now(UTC) - timedelta(seconds=5))
    assert anonymous.get(f"/requests/{cid}/rate", params={"t": expired}).status_code == 404
    ok = anonymous.post(f"/requests/{cid}/rate", data={"t": token, "score": "4",
                                                       "csrf": csrf_of(page.text)})
    assert ok.status_code == 200 and "4 of 5" in ok.text
    [rating] = portal_db(mongo_url, stack, "ratings", "find", {"_id": cid})
    assert rating["rating"] == 4


def test_group_restricted_service_is_invisible_to_others(stack, mail):
    items = httpx.get(f"{stack['boards'].url}/v1/services", headers=auth(stack)).json()["items"]
    legal = next(s["service"] for s in items if s["service"]["id"] == "legal-document")
    legal["access"] = {"groups": ["legal-team"]}
    r = httpx.put(f"{stack['boards'].url}/v1/services/legal-document", headers=auth(stack),
                  json=legal)
    assert r.status_code in (200, 201), r.text
    lawyer = sign_in(stack, mail, "lawyer@acme.example")
    other = sign_in(stack, mail, new_email("clerk"))
    wait_until(lambda: "/services/legal-document/new" not in other.get("/").text)
    assert "/services/legal-document/new" in lawyer.get("/").text
    assert other.get("/services/legal-document/new").status_code == 404
    assert lawyer.get("/services/legal-document/new").status_code == 200


def test_security_headers_and_cookies(stack, mail):
    client = portal_client(stack)
    r = client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text  # no inline script anywhere: the CSP would block it
    email = new_email("cookie")
    ask_code(client, email)
    page = client.get("/login/code")
    r = client.post("/login/code", data={"code": code_from(mail, email),
                                         "csrf": csrf_of(page.text)})
    cookie = next(v for k, v in r.headers.multi_items()
                  if k == "set-cookie" and v.startswith("desk_portal_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    widget = client.get("/widget")
    assert "frame-ancestors http://intranet.acme.example" in \
        widget.headers["content-security-policy"]
    assert "x-frame-options" not in widget.headers
    # signing out ends the session on the server, not just in the browser
    cookie_value = client.cookies["desk_portal_session"]
    client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})
    replay = portal_client(stack)
    replay.cookies.set("desk_portal_session", cookie_value)
    assert replay.get("/").status_code == 303


def test_open_redirect_is_refused(stack, mail):
    client = portal_client(stack)
    r = client.get("/lang/ru", params={"next": "//evil.example/x"})
    assert r.headers["location"] == "/"
    r = client.get("/lang/ru", params={"next": "https://evil.example/"})
    assert r.headers["location"] == "/"
