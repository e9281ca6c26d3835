"""Names and links in contracts: nothing a mail header or an `href` would misread gets in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from desk_contracts.events import AttachmentRef, Author, Person, clean_name

SHA = "0" * 64


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@acme.example", "Eve\nX", "Eve\rX",
                                  "Eve\x00", "Eve\tTab", "Eve\u2028X", "Eve\x85X"])
def test_a_name_with_control_characters_is_refused_in_every_person_and_author(name):
    with pytest.raises(ValidationError, match="control characters"):
        Person(email="eve@acme.example", name=name)
    with pytest.raises(ValidationError, match="control characters"):
        Author(kind="agent", name=name)
    # the same payload as it arrives on the bus (a consumer validates it the same way)
    with pytest.raises(ValidationError):
        Person.model_validate({"email": "eve@acme.example", "name": name})


def test_ordinary_names_in_any_script_still_pass():
    for name in ("Иван Петров", "O'Brien, Mary", "李雷", "Zoë (IT) — ext. 42"):
        assert Person(email="a@acme.example", name=name).name == name


def test_an_address_with_a_line_break_is_refused():
    with pytest.raises(ValidationError):
        Person(email="eve@acme.example\r\nBcc: x@y.example")


def test_a_channel_name_is_cleaned_rather_than_refused():
    assert clean_name("Eve\r\n  Example\t") == "Eve Example"
    assert clean_name("\r\n") is None


def ref(url: str | None) -> AttachmentRef:
    return AttachmentRef(id="a1", filename="f.pdf", content_type="application/pdf", size=1,
                         sha256=SHA, url=url)


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:x", "//evil.example/x",
    "/\\evil.example", "http:///nohost", "https://acme.example/a b", "file:///etc/passwd",
    "java\nscript:alert(1)", "ftp://files.example/x",
])
def test_an_attachment_link_is_http_or_our_own_path_only(url):
    with pytest.raises(ValidationError):
        ref(url)


@pytest.mark.parametrize("url", [
    None, "http://127.0.0.1:8001/v1/attachments/a1?t=abc",
    "https://intake.acme.example/v1/attachments/a1?t=abc", "/attachments/a1?t=abc",
])
def test_real_attachment_links_pass(url):
    assert ref(url).url == url
