"""Parsing pieces without a running service: HTML to text, reply trimming, type sniffing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from intake.attachments import safe_filename, sniff_content_type
from intake.mail.html_text import html_to_text
from intake.mail.ingest import split_recipient
from intake.mail.parse import Unparseable, decode_bytes, parse_mail
from intake.mail.trim import strip_signature, trim_reply

from tests.intake.helpers import CORPUS


def test_html_to_text_drops_active_content_and_keeps_structure():
    text = html_to_text("<html><head><style>p{}</style></head><body><p>Hello&nbsp;there</p>"
                        "<script>steal()</script><ul><li>one</li><li>two</li></ul>"
                        "<p>See <a href='https://x.example/a'>docs</a><br>bye</p>"
                        "<blockquote>old text</blockquote></body></html>")
    assert text == ("Hello there\n- one\n- two\n\nSee docs (https://x.example/a)\nbye\n\n"
                    "> old text")


def test_trim_reply_variants():
    assert trim_reply("New.\n\n-----Original Message-----\nFrom: x\nold") == "New."
    assert trim_reply("Новое.\n\nОт: Иван\nОтправлено: вторник\nТема: x\n\nстарое") == "Новое."
    assert trim_reply("Ok.\n\nSent from my iPhone\n\n> old") == "Ok."
    assert trim_reply("Fine, thanks.\n\nС уважением,\nМария") == "Fine, thanks."
    assert trim_reply("Oui.\n\nLe 25 nov. 2026, Anna a écrit :\n> x") == "Oui."
    # a reply that is only quoted text keeps its text rather than becoming empty
    assert trim_reply("> only quoted") == "> only quoted"
    assert strip_signature("Body\n-- \nSig") == "Body"


def test_charsets_fall_back_when_the_label_is_wrong():
    assert decode_bytes("Привет".encode("cp1251"), "us-ascii") == "Привет"
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_bytes("Привет".encode(), "x-unknown-charset") == "Привет"


def test_sniffing_trusts_bytes_not_names():
    assert sniff_content_type(b"%PDF-1.7 ...", "invoice.exe") == "application/pdf"
    assert sniff_content_type(b"MZ\x90\x00", "invoice.pdf") == "application/x-msdownload"
    assert sniff_content_type("текст".encode(), "notes.txt") == "text/plain"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert safe_filename("\x00") == "attachment"


def test_recipients_of_our_domain_only():
    assert split_recipient("problem@desk.localhost", "desk.localhost").service == "problem"
    r = split_recipient("Problem+SD-4-abcdefghij@Desk.Localhost", "desk.localhost")
    assert (r.service, r.token) == ("problem", "sd-4-abcdefghij")
    assert split_recipient("problem@desk.localhost.evil.io", "desk.localhost") is None
    assert split_recipient("problem@evil.io", "desk.localhost") is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_parse_or_are_refused_with_a_reason(data):
    try:
        mail = parse_mail(data)
    except Unparseable as exc:
        assert exc.reason and exc.detail is not None
    else:
        assert "@" in mail.sender


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(p.name for p in CORPUS.glob("*.eml"))),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=20))
def test_damaged_corpus_mail_never_crashes_the_parser(name, flips):
    data = bytearray((CORPUS / name).read_bytes())
    for pos, byte in flips:
        data[pos % len(data)] = byte
    try:
        parse_mail(bytes(data))
    except Unparseable:
        pass


def test_sender_name_written_in_the_old_comment_form_is_kept():
    mail = parse_mail((CORPUS / "21-comment-form-from.eml").read_bytes())
    assert (mail.sender, mail.sender_name) == ("marc.smith@acme.example", "Marc Smith")

    def sender(from_header: bytes) -> tuple[str, str | None]:
        parsed = parse_mail(b"From: " + from_header + b"\r\nSubject: x\r\n\r\nHello\r\n")
        return parsed.sender, parsed.sender_name

    assert sender(b"(Marc Smith) marc@acme.example") == ("marc@acme.example", "Marc Smith")
    assert sender(b"marc@acme.example (=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=)") == (
        "marc@acme.example", "Jürgen Müller")
    assert sender("marc@acme.example (Иван Петров)".encode()) == (
        "marc@acme.example", "Иван Петров")
    assert sender(b"marc@acme.example (Smith\\, Marc (Sales))") == (
        "marc@acme.example", "Smith, Marc (Sales)")
    assert sender(b"marc@acme.example\r\n (Marc\r\n Smith)") == ("marc@acme.example", "Marc Smith")
    # a display name wins over a comment; a bare address has no name
    assert sender(b"Marc <marc@acme.example> (office)") == ("marc@acme.example", "Marc")
    assert sender(b"marc@acme.example") == ("marc@acme.example", None)
    # only the first mailbox's comment names the sender
    assert sender(b"marc@acme.example, (Other Person) o@acme.example") == (
        "marc@acme.example", None)


@pytest.mark.parametrize("name, language", [
    ("01-plain-utf8.eml", "en"),
    ("04-koi8r.eml", "ru"),
    ("05-windows-1251.eml", "ru"),
    ("07-rfc2047-subject.eml", "en"),   # a Russian subject, but the text is English
    ("20-wrong-charset-label.eml", "ru"),
    ("21-comment-form-from.eml", "en"),
    ("22-german.eml", "de"),
    ("23-chinese.eml", "zh"),
])
def test_language_of_real_mail(name, language):
    assert parse_mail((CORPUS / name).read_bytes()).language == language


def test_language_is_unknown_when_the_mail_says_too_little():
    assert parse_mail(b"From: a@acme.example\r\nSubject: VPN\r\n\r\nError 809\r\n"
                      ).language == "unknown"
    # quoted history does not decide the language of the customer's own words
    quoted = ("From: a@acme.example\r\nSubject: Re: Drucker\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n\r\nOk\r\n\r\n"
              "> Der Drucker im dritten Stock funktioniert nicht mehr, bitte helfen Sie mir.\r\n")
    assert parse_mail(quoted.encode()).language == "unknown"
