"""Judging a mail's From: real DKIM signatures (a generated key, DNS answered by the test),
a trusted upstream's Authentication-Results, and the envelope sender."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from intake.mail.trust import SenderTrust, aligned, pinned_dns

from tests.support.dkim_keys import SigningDomain


def mail(sender: str, body: str = "Still broken.\n", extra: dict | None = None) -> bytes:
    msg = EmailMessage()
    for k, v in (extra or {}).items():
        msg[k] = v
    msg["From"] = f"Anna <{sender}>"
    msg["To"] = "problem@desk.localhost"
    msg["Subject"] = "Re: [SD-4] VPN"
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture(scope="module")
def acme() -> SigningDomain:
    return SigningDomain("acme.example")


@pytest.fixture(scope="module")
def evil() -> SigningDomain:
    return SigningDomain("evil.example")


def trust(*domains: SigningDomain, authserv: list[str] = ()) -> SenderTrust:
    published = {d.dns_name: d.txt for d in domains}
    asked: list[str] = []

    def dns(name, timeout=5):  # the DNS lookup dkimpy makes, answered here
        asked.append(name.decode() if isinstance(name, bytes) else name)
        return published.get(asked[-1].rstrip("."), "").encode() or None

    t = SenderTrust(trusted_authserv_ids=list(authserv), dkim_verify=True, dnsfunc=dns)
    t.asked = asked  # type: ignore[attr-defined]
    return t


def test_an_aligned_dkim_signature_that_verifies_passes(acme):
    raw = acme.sign(mail("anna@acme.example"))
    t = trust(acme)
    check = t.check(raw, "anna@acme.example", None)
    assert check.verdict == "pass" and "d=acme.example" in check.detail
    assert t.asked == ["s1._domainkey.acme.example."]
    # a subdomain's mailbox is covered by the organisation's signature (relaxed alignment)
    assert t.check(acme.sign(mail("anna@eu.acme.example")), "anna@eu.acme.example",
                   None).verdict == "pass"


def test_a_signed_mail_altered_on_the_way_fails(acme):
    raw = acme.sign(mail("anna@acme.example", "Original text.\n"))
    tampered = raw.replace(b"Original text.", b"Send the VPN password to me.")
    check = trust(acme).check(tampered, "anna@acme.example", None)
    assert check.verdict == "fail" and "dkim=fail" in check.detail


def test_a_signature_made_with_someone_elses_key_fails(acme, evil):
    """The attacker signs as acme.example with their own key: DNS holds acme's key."""
    forged = SigningDomain("acme.example")
    forged.private = evil.private
    check = trust(acme).check(forged.sign(mail("anna@acme.example")), "anna@acme.example",
                              None)
    assert check.verdict == "fail"


def test_a_signature_of_another_domain_vouches_for_nothing(evil):
    """evil.example signs its own mail that claims to be From acme.example."""
    raw = evil.sign(mail("anna@acme.example"))
    t = trust(evil)
    assert t.check(raw, "anna@acme.example", None).verdict == "none"
    assert t.asked == []  # not even looked up
    # and over SMTP its envelope sender gives it away
    check = t.check(raw, "anna@acme.example", "bounce@evil.example")
    assert check.verdict == "fail" and "envelope sender" in check.detail


def test_a_selector_without_a_published_key_fails(acme):
    raw = acme.sign(mail("anna@acme.example"))
    assert trust().check(raw, "anna@acme.example", None).verdict == "fail"


def test_unsigned_mail_is_judged_by_its_envelope_sender():
    raw = mail("anna@acme.example")
    t = trust()
    assert t.check(raw, "anna@acme.example", "anna@acme.example").verdict == "none"
    assert t.check(raw, "anna@acme.example", "bounces@mail.acme.example").verdict == "none"
    assert t.check(raw, "anna@acme.example", None).verdict == "none"  # IMAP, the pipe
    check = t.check(raw, "anna@acme.example", "attacker@evil.example")
    assert check.verdict == "fail"
    # a look-alike is not a subdomain
    assert t.check(raw, "anna@acme.example", "x@acme.example.evil.io").verdict == "fail"
    assert t.check(raw, "anna@acme.example", "x@evilacme.example").verdict == "fail"


def test_a_trusted_upstreams_dmarc_verdict_decides():
    t = trust(authserv=["mx.company.example"])
    failed = mail("anna@acme.example", extra={
        "Authentication-Results": "mx.company.example; spf=pass smtp.mailfrom=evil.example; "
                                  "dkim=none; dmarc=fail (p=reject) header.from=acme.example"})
    check = t.check(failed, "anna@acme.example", "anna@acme.example")
    assert check.verdict == "fail" and "dmarc=fail by mx.company.example" in check.detail
    passed = mail("anna@acme.example", extra={
        "Authentication-Results": "mx.company.example; dkim=pass header.d=acme.example "
                                  "header.s=s1; dmarc=pass header.from=acme.example"})
    # DKIM survives forwarding: the upstream's pass counts even with a rewritten envelope
    assert t.check(passed, "anna@acme.example", "srs0=x@forwarder.example").verdict == "pass"


def test_authentication_results_from_anyone_else_are_ignored():
    """The sender wrote its own Authentication-Results; only the upstream's count."""
    forged = mail("anna@acme.example", extra={
        "Authentication-Results": "mx.evil.example; dmarc=pass header.from=acme.example"})
    t = trust(authserv=["mx.company.example"])
    assert t.check(forged, "anna@acme.example", "attacker@evil.example").verdict == "fail"
    assert trust().check(forged, "anna@acme.example", None).verdict == "none"


def test_only_the_topmost_trusted_header_counts():
    """Below the upstream's own header, one with its id can only have come with the mail."""
    raw = mail("anna@acme.example", extra={
        "Authentication-Results": "mx.company.example; dmarc=fail header.from=acme.example"})
    raw = (b"Authentication-Results: mx.company.example; dmarc=fail header.from=acme.example\r\n"
           + raw.replace(b"dmarc=fail", b"dmarc=pass"))
    assert trust(authserv=["mx.company.example"]).check(
        raw, "anna@acme.example", None).verdict == "fail"


def test_aligned_dkim_pass_from_the_upstream_without_dmarc():
    raw = mail("anna@acme.example", extra={
        "Authentication-Results": "mx.company.example; dkim=pass (2048-bit key) "
                                  "header.i=@acme.example; spf=fail smtp.mailfrom=evil.example"})
    assert trust(authserv=["mx.company.example"]).check(
        raw, "anna@acme.example", None).verdict == "pass"


def test_pinned_keys_answer_before_dns(acme):
    calls: list = []
    lookup = pinned_dns({acme.dns_name: acme.txt}, lambda n, timeout=5: calls.append(n))
    assert lookup(b"s1._domainkey.acme.example.") == acme.txt.encode()
    assert lookup(b"other._domainkey.acme.example.") is None and len(calls) == 1
    t = SenderTrust(trusted_authserv_ids=[], dkim_verify=True,
                    dnsfunc=pinned_dns({acme.dns_name: acme.txt}, None))
    assert t.check(acme.sign(mail("anna@acme.example")), "anna@acme.example",
                   None).verdict == "pass"


def test_alignment_is_relaxed_but_exact():
    assert aligned("acme.example", "acme.example")
    assert aligned("mail.acme.example", "acme.example")
    assert not aligned("acme.example.evil.io", "acme.example")
    assert not aligned("evilacme.example", "acme.example")
    assert not aligned("", "acme.example")
