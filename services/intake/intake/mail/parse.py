"""Raw RFC 5322 bytes → what intake needs, for any mail real clients and servers produce.

Uses the stdlib `email` package with `policy.default`, and decodes text itself so a
wrong or missing charset label (common with KOI8-R and windows-1251 mail) falls back to
detection instead of mojibake or an exception.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from charset_normalizer import from_bytes
from desk_runtime.language import detect_language

from intake.mail.html_text import html_to_text

_MSGID = re.compile(r"<([^<>\s]+)>")
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|autoreply|out of (the )?office|"
    r"автоматический ответ|автоответ|вне офиса|нет на месте)\b", re.I)
_BOUNCE_FROM = re.compile(r"^(mailer-daemon|postmaster)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery status notification|returned mail|failure notice|"
    r"mail delivery failed|недоставлен|не доставлен)", re.I)


class Unparseable(Exception):
    """The bytes are not a mail we can read; the reason goes to the quarantine."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Bounce:
    recipient: str
    status: str
    permanent: bool
    diagnostic: str


@dataclass
class ParsedMail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    sender: str
    sender_name: str | None
    recipients: list[str]
    subject: str
    text: str
    attachments: list[Attachment] = field(default_factory=list)
    auto_reply: str | None = None  # why it is automatic mail, None for a person's mail
    bounces: list[Bounce] | None = None  # set when the mail is a delivery report
    desk_origin: bool = False
    # Message-IDs of the returned original in a delivery report (which mail bounced)
    bounced_ids: list[str] = field(default_factory=list)
    language: str | None = None  # ISO 639-1 code of what the customer wrote, or "unknown"
    defects: list[str] = field(default_factory=list)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset, falling back to detection when the label is wrong."""
    if charset:
        charset = charset.strip().strip('"').lower()
        aliases = {"win-1251": "cp1251", "windows-1251": "cp1251", "x-cp1251": "cp1251",
                   "koi8r": "koi8-r", "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7"}
        charset = aliases.get(charset, charset)
        try:
            text = data.decode(charset)
            if charset not in ("us-ascii", "ascii") or data.isascii():
                return text
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    cyrillic = _guess_cyrillic(data)
    if cyrillic is not None:
        return cyrillic
    best = from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("latin-1")


_FREQUENT_RU = set("оеаинтсрвлкмдпуяызьбгчйхжшюцщэф")


def _guess_cyrillic(data: bytes) -> str | None:
    """Unlabelled Russian 8-bit text: the candidate with the most ordinary lowercase letters.

    Statistical detectors misjudge short Russian texts (and KOI8-R vs windows-1251 swap
    case), while real text is mostly lowercase Cyrillic in the right charset.
    """
    high = sum(b >= 0xC0 for b in data)
    if high < max(3, len(data) // 20):
        return None
    best, best_score = None, 0
    for charset in ("cp1251", "koi8-r", "iso-8859-5"):
        try:
            text = data.decode(charset)
        except UnicodeDecodeError:
            continue
        score = sum(ch in _FREQUENT_RU for ch in text)
        if score > best_score:
            best, best_score = text, score
    return best if best_score >= high * 0.6 else None


def _fix_header(value: str, charset_hint: str | None) -> str:
    """Raw 8-bit header bytes (no RFC 2047) come back as surrogates; decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw, charset_hint)


def _header(msg: Message, name: str, hint: str | None) -> str:
    try:
        value = msg.get(name)
    except Exception:  # malformed header the policy cannot model: fall back to raw
        raw = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
        value = raw[0] if raw else None
    if value is None:
        return ""
    return _fix_header(str(value), hint).strip()


def _ids(value: str) -> list[str]:
    found = _MSGID.findall(value or "")
    if not found and value and "@" in value and " " not in value.strip():
        found = [value.strip().strip("<>")]
    return found


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw in msg.get_all(name, []) or []:
        try:
            addrs = getattr(raw, "addresses", None)
            if addrs is not None:
                out += [(a.display_name, a.addr_spec) for a in addrs if a.addr_spec]
                continue
        except Exception:
            pass
        out += [(n, a) for n, a in email.utils.getaddresses([str(raw)]) if a]
    return [(n, a.strip().lower()) for n, a in out if "@" in a]


def _comment_name(raw: str) -> str:
    """The old comment form's name: `marc@example.com (Marc Smith)` → "Marc Smith".

    RFC 5322 keeps comments only for backwards compatibility, so the stdlib's address
    parser drops them; mail clients still show them as the sender's name. Only the first
    mailbox of the header is read (up to a top-level comma).
    """
    comments: list[str] = []
    depth, quoted, escaped, current = 0, False, False, ""
    for ch in raw:
        if escaped:
            escaped = False
            if depth:
                current += ch
            continue
        if ch == "\\" and (quoted or depth):
            escaped = True
            continue
        if quoted:
            quoted = ch != '"'
            continue
        if ch == "(":
            if depth:
                current += ch
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth:
                current += ch
            else:
                comments.append(current)
                current = ""
        elif depth:
            current += ch
        elif ch == '"':
            quoted = True
        elif ch == ",":
            break
    text = " ".join(c.strip() for c in comments if c.strip())
    if "=?" in text:
        try:
            text = str(email.header.make_header(email.header.decode_header(text)))
        except (ValueError, LookupError, UnicodeDecodeError):
            pass  # an undecodable encoded word stays as written rather than losing the name
    return re.sub(r"\s+", " ", text).strip()


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _language(subject: str, text: str) -> str:
    """The customer's own words decide: quoted history and signatures do not count."""
    own = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))
    return detect_language(f"{subject}\n{own}")


def _charset_hint(msg: Message) -> str | None:
    for part in msg.walk():
        cs = part.get_content_charset()
        if cs and cs not in ("us-ascii", "ascii"):
            return cs
    return None


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _auto_reply(msg: Message, subject: str) -> str | None:
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {auto.split(';')[0]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoreply-From", "X-Mail-Autoreply",
                 "X-Autogenerated"):
        if msg.get(name) is not None:
            return name.lower()
    precedence = (msg.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    if (msg.get("X-Auto-Response-Suppress") or "").strip() and _AUTO_SUBJECT.search(subject):
        return "out-of-office"
    if _AUTO_SUBJECT.search(subject):
        return "auto-reply subject"
    return None


def _bounces(msg: Message, sender: str, subject: str) -> list[Bounce] | None:
    if msg.get_content_type() == "multipart/report":
        found: list[Bounce] = []
        for part in msg.walk():
            if part.get_content_type() != "message/delivery-status":
                continue
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                continue
            for block in blocks[1:]:
                action = (block.get("Action") or "").strip().lower()
                if action not in ("failed", ""):
                    continue  # delayed/relayed/delivered are not failures
                recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient")
                                or "")
                recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                status = (block.get("Status") or "").strip()
                diagnostic = re.sub(r"\s+", " ", str(block.get("Diagnostic-Code") or ""))
                if recipient:
                    found.append(Bounce(recipient, status, not status.startswith("4"),
                                        diagnostic.strip()[:2000]))
        return found
    if _BOUNCE_FROM.match(sender) and _BOUNCE_SUBJECT.search(subject):
        return []  # a non-standard bounce: no machine-readable recipient
    return None


def _returned_ids(msg: Message) -> list[str]:
    """Message-IDs of the original a delivery report returns (full message or headers)."""
    ids: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            for m in inner if isinstance(inner, list) else []:
                ids += _ids(str(m.get("Message-ID") or ""))
        elif ctype == "text/rfc822-headers":
            headers = email.message_from_bytes(part.get_payload(decode=True) or b"",
                                               policy=email.policy.compat32)
            ids += _ids(str(headers.get("Message-ID") or ""))
    return ids


def _body_and_attachments(msg: Message) -> tuple[str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []

    def visit(part: Message, in_alternative: bool) -> None:
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
        if ctype == "message/rfc822":
            # a mail forwarded as an attachment stays one .eml attachment
            inner = part.get_payload()
            inner_msg = inner[0] if isinstance(inner, list) and inner else None
            data = inner_msg.as_bytes(policy=email.policy.SMTP) if inner_msg else b""
            subj = str(inner_msg.get("Subject") or "forwarded") if inner_msg else "forwarded"
            attachments.append(Attachment(filename or f"{subj[:80]}.eml", ctype, data))
            return
        if part.is_multipart():
            if ctype == "multipart/report":
                # the human-readable first part only
                parts = part.get_payload()
                if parts:
                    visit(parts[0], False)
                return
            alt = ctype == "multipart/alternative"
            children = part.get_payload()
            if alt:
                # prefer the plain part of an alternative; HTML only when there is none
                plains = [c for c in children if c.get_content_type() == "text/plain"
                          and not c.get_filename()]
                chosen = plains[-1:] or [c for c in children if c.get_content_type() ==
                                         "text/html"][-1:] or children[-1:]
                for c in children:
                    if c in chosen or c.is_multipart():
                        visit(c, True)
                return
            for c in children:
                visit(c, False)
            return
        is_body = disposition != "attachment" and not filename and ctype in (
            "text/plain", "text/html")
        if is_body:
            (plain if ctype == "text/plain" else html).append(_part_text(part))
            return
        data = part.get_payload(decode=True) or b""
        if not data and not filename:
            return
        attachments.append(Attachment(filename or "", ctype, data))

    visit(msg, False)
    if plain and any(p.strip() for p in plain):
        text = "\n\n".join(p.strip("\n") for p in plain)
    elif html:
        text = "\n\n".join(html_to_text(h) for h in html)
    else:
        text = ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return text.strip(), attachments


def parse_mail(raw: bytes, *, envelope_sender: str | None = None) -> ParsedMail:
    if not raw.strip():
        raise Unparseable("empty", "the message has no content")
    try:
        msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is truly broken input
        raise Unparseable("unparseable", str(exc)[:500]) from None
    if not msg.keys():
        raise Unparseable("no_headers", "no header block found")
    hint = _charset_hint(msg)
    defects = [type(d).__name__ for d in msg.defects]
    try:
        senders = _addresses(msg, "From")
    except Exception as exc:
        raise Unparseable("bad_from", f"the From header cannot be read: {exc}") from None
    if not senders:
        # The envelope sender is a bounce address (often a forwarding server's), not the
        # person who wrote: without a From there is nobody to answer.
        raise Unparseable("no_sender", "the message has no readable From address: "
                          + _header(msg, "From", hint)[:200])
    sender_name, sender = senders[0]
    if not sender_name.strip():
        sender_name = _comment_name(_fix_header(_raw_header(msg, "From"), hint))
    subject = re.sub(r"\s+", " ", _header(msg, "Subject", hint)).strip()
    recipients: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        try:
            recipients += [a for _, a in _addresses(msg, name)]
        except Exception:
            defects.append(f"bad {name}")
    try:
        text, attachments = _body_and_attachments(msg)
    except Exception as exc:
        raise Unparseable("bad_body", f"the body cannot be decoded: {exc}") from None
    message_ids = _ids(_header(msg, "Message-ID", hint))
    bounces = _bounces(msg, sender, subject)
    return ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=_ids(_header(msg, "In-Reply-To", hint)),
        references=_ids(_header(msg, "References", hint)),
        sender=sender, sender_name=_fix_header(sender_name, hint) or None,
        recipients=list(dict.fromkeys(recipients)),
        subject=subject, text=text, attachments=attachments,
        auto_reply=None if bounces is not None else _auto_reply(msg, subject),
        bounces=bounces,
        desk_origin=msg.get("X-Desk-Origin") is not None,
        bounced_ids=_returned_ids(msg) if bounces is not None else [],
        language=_language(subject, text),
        defects=defects,
    )
