"""Whether an inbound mail's From can be believed (Authentication-Results, DKIM, envelope).

Threading must not let a forged From write into somebody's request. The verdict is
`pass` (the From domain is authenticated: DMARC pass from a trusted upstream, or an aligned
DKIM signature that verifies), `fail` (there is evidence against it: DMARC fail, an aligned
signature that does not verify, an envelope sender of another domain) or `none` (nothing
either way: unsigned mail from a domain that publishes nothing, IMAP without a trusted
upstream). Alignment is relaxed: the same domain, or one a subdomain of the other.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import dkim
from desk_contracts.access import domain_of

Verdict = Literal["pass", "fail", "none"]
DnsTxt = Callable[..., bytes | None]


@dataclass(frozen=True)
class SenderCheck:
    verdict: Verdict
    detail: str


def aligned(a: str | None, b: str | None) -> bool:
    """Relaxed alignment without a public-suffix list: equal, or one inside the other."""
    if not a or not b:
        return False
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def pinned_dns(keys: dict[str, str], fallback: DnsTxt | None) -> DnsTxt:
    """A dkimpy `dnsfunc`: pinned TXT records first, then `fallback` (DNS) if any."""
    pinned = {k.lower().rstrip("."): v.encode() for k, v in keys.items()}

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        key = (name.decode() if isinstance(name, bytes) else name).lower().rstrip(".")
        if key in pinned:
            return pinned[key]
        return fallback(name, timeout=timeout) if fallback is not None else None

    return lookup


# --- Authentication-Results (RFC 8601) ---------------------------------------------------------

_RESULT = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)((?:\s+[a-z]+\.[a-z-]+\s*=\s*[^\s;]+)*)",
                     re.I)
_PROP = re.compile(r"([a-z]+\.[a-z-]+)\s*=\s*([^\s;]+)", re.I)


def _strip_comments(value: str) -> str:
    out, depth = [], 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _auth_results(headers, trusted: set[str]) -> list[tuple[str, str, dict[str, str]]] | None:
    """Results (method, result, properties) of the topmost header a trusted upstream added.

    Only the topmost one counts: anything further down came with the message and could
    have been written by its sender.
    """
    for raw in headers.get_all("Authentication-Results") or []:
        value = " ".join(_strip_comments(str(raw)).split())
        authserv_id = value.split(";", 1)[0].strip().split(" ")[0].lower()
        if authserv_id not in trusted:
            continue
        results = []
        for part in value.split(";")[1:]:
            match = _RESULT.search(part)
            if match:
                props = {k.lower(): v.strip().strip('"').lower()
                         for k, v in _PROP.findall(match.group(3) or "")}
                results.append((match.group(1).lower(), match.group(2).lower(), props))
        return results
    return None


def _judge_auth_results(results: list[tuple[str, str, dict[str, str]]], from_domain: str,
                        authserv: str) -> SenderCheck:
    by = f"by {authserv}"
    for method, result, _ in results:
        if method == "dmarc" and result == "pass":
            return SenderCheck("pass", f"dmarc=pass {by}")
        if method == "dmarc" and result == "fail":
            return SenderCheck("fail", f"dmarc=fail {by}: the From domain is not authenticated")
    failed = None
    for method, result, props in results:
        if method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
        else:  # spf: the envelope sender's domain (or, for a null sender, the HELO name)
            domain = (props.get("smtp.mailfrom", "").rpartition("@")[2]
                      or props.get("smtp.helo", ""))
        if not aligned(domain, from_domain):
            continue
        if result == "pass":
            return SenderCheck("pass", f"{method}=pass ({domain}) {by}")
        if result in ("fail", "softfail", "permerror"):
            failed = SenderCheck("fail", f"{method}={result} ({domain}) {by}")
    return failed or SenderCheck("none", f"no aligned pass or fail {by}")


# --- DKIM --------------------------------------------------------------------------------------

def _dkim_domains(headers) -> list[str]:
    domains = []
    for raw in headers.get_all("DKIM-Signature") or []:
        tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", str(raw)).split(";")
                    if "=" in t)
        domains.append(tags.get("d", "").lower())
    return domains


def _verify_dkim(raw: bytes, from_domain: str, headers, dnsfunc: DnsTxt) -> SenderCheck:
    domains = _dkim_domains(headers)
    verifier = dkim.DKIM(raw, minkey=1024, timeout=5)
    failure = None
    for idx, domain in enumerate(domains):
        if not aligned(domain, from_domain):
            continue  # a signature of another domain vouches for nothing about From
        try:
            if verifier.verify(idx=idx, dnsfunc=dnsfunc):
                return SenderCheck("pass", f"dkim=pass (d={domain})")
            failure = SenderCheck("fail", f"dkim=fail (d={domain}): the signature does not "
                                  "verify")
        except dkim.DnsTimeoutError:
            failure = failure or SenderCheck("none", f"dkim=temperror (d={domain}): key lookup "
                                             "timed out")
        except dkim.DKIMException as exc:  # body hash mismatch, no such key, bad key, ...
            failure = SenderCheck("fail", f"dkim=fail (d={domain}): {exc}"[:300])
    return failure or SenderCheck("none", "no DKIM signature of the From domain")


# --- the verdict -------------------------------------------------------------------------------

class SenderTrust:
    def __init__(self, *, trusted_authserv_ids: list[str], dkim_verify: bool,
                 dnsfunc: DnsTxt | None):
        self.trusted = {a.strip().lower() for a in trusted_authserv_ids if a.strip()}
        self.dkim_verify = dkim_verify
        self.dnsfunc = dnsfunc

    def check(self, raw: bytes, from_address: str, envelope_sender: str | None) -> SenderCheck:
        """Judge From. Blocking (RSA, DNS): run it off the event loop."""
        from_domain = domain_of(from_address)
        if from_domain is None:
            return SenderCheck("fail", f"From {from_address!r} is not one valid address")
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        results = _auth_results(headers, self.trusted) if self.trusted else None
        if results is not None:
            # the upstream saw the connection and looked the keys up: its word decides
            found = _judge_auth_results(results, from_domain, ", ".join(sorted(self.trusted)))
            if found.verdict != "none":
                return found
            return self._envelope(from_domain, envelope_sender, found)
        found = SenderCheck("none", "not signed")
        if self.dkim_verify and self.dnsfunc is not None and _dkim_domains(headers):
            found = _verify_dkim(raw, from_domain, headers, self.dnsfunc)
            if found.verdict == "pass" or found.verdict == "fail":
                return found
        return self._envelope(from_domain, envelope_sender, found)

    @staticmethod
    def _envelope(from_domain: str, envelope_sender: str | None, found: SenderCheck
                  ) -> SenderCheck:
        # Without a signature, the envelope sender is the one other witness: mail whose
        # MAIL FROM is of another domain than its From is not the From domain's own mail
        # (forwarders that rewrite it are covered by DKIM, which survives forwarding).
        if envelope_sender:
            env_domain = domain_of(envelope_sender) or envelope_sender.rpartition("@")[2]
            if not aligned(env_domain, from_domain):
                return SenderCheck("fail", f"envelope sender {envelope_sender} does not match "
                                   f"From's domain {from_domain}")
        return found

    @classmethod
    def from_settings(cls, settings) -> SenderTrust:
        fallback = None
        if settings.dkim_dns:
            from dkim.dnsplug import get_txt as fallback  # dnspython
        return cls(trusted_authserv_ids=settings.trusted_authserv_ids,
                   dkim_verify=settings.dkim_verify,
                   dnsfunc=pinned_dns(settings.dkim_keys, fallback))


# --- who may write into a request ----------------------------------------------------------

def is_participant(thread: dict, sender: str, organisations: dict) -> bool:
    """The requester, anyone cc'd on the request or who wrote on it as a participant, or a
    member of the requester's organisation (the portal's, else INTAKE_ORGANISATIONS)."""
    sender = sender.strip().lower()
    if sender in (thread.get("participants") or []):
        return True
    requester = thread.get("requester") or {}
    owner = (requester.get("email") or "").lower()
    if not owner:
        return False
    named = requester.get("organisation")
    for name, members in organisations.items():
        if (name == named or members.contains(owner)) and members.contains(sender):
            return True
    return False


def hold_reason(check: SenderCheck, participant: bool, *, require_authenticated: bool,
                sender: str, number: str | None) -> str | None:
    """Why a reply must wait for an agent instead of reaching the card; None = it may go."""
    card = number or "the request"
    if check.verdict == "fail":
        return f"{sender} could not be verified as the sender ({check.detail}); held for {card}"
    if not participant:
        return f"{sender} is not a participant of {card}; held for an agent to accept"
    if require_authenticated and check.verdict != "pass":
        return (f"{sender} is not authenticated ({check.detail}) and authentication is "
                f"required; held for {card}")
    return None
