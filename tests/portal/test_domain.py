"""The portal's pure rules: access matching, visibility filters, languages, codes, redirects."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from portal.api.web import local_path
from portal.domain.access import (
    may_see_request,
    may_sign_in,
    may_use_service,
    normalise_email,
    requests_filter,
)
from portal.domain.i18n import TEXT, choose_language, field_error, translate
from portal.domain.login import clean_code, code_hash, new_code
from portal.settings import AddressRule, PortalSettings

SETTINGS = PortalSettings(
    access=AddressRule(domains=["acme.com", "*.partner.io"], addresses=["solo@gmail.com"]),
    groups={"legal": AddressRule(addresses=["lawyer@acme.com"])},
    organisations={"acme": AddressRule(domains=["acme.com"])},
)


def service(**access) -> ServiceDefinition:
    return ServiceDefinition.model_validate({
        "id": "s", "name": {"en": "S"}, "access": access,
        "target": {"board_id": "b", "column_id": "c", "lane_id": "l"}})


def test_sign_in_matches_exact_domains_only():
    assert may_sign_in("anna@acme.com", SETTINGS)
    assert may_sign_in("Anna@ACME.com", SETTINGS)
    assert may_sign_in("x@it.partner.io", SETTINGS)
    assert may_sign_in("solo@gmail.com", SETTINGS)
    for evil in ("m@acme.com.evil.io", "m@evil-acme.com", "m@evilacme.com", "m@partner.io.evil",
                 "other@gmail.com", "m@acme.com@evil.io", "m@acme.com x@evil.io"):
        assert not may_sign_in(evil, SETTINGS), evil


def test_normalise_email_refuses_what_is_not_one_address():
    assert normalise_email("  Anna@Acme.COM ") == "anna@acme.com"
    for bad in ("", "anna", "a@b", "a b@acme.com", "a@acme.com, b@acme.com", "x" * 250 + "@a.co"):
        assert normalise_email(bad) is None, bad


def test_service_access_by_domain_address_and_group():
    assert may_use_service("anyone@acme.com", service(), SETTINGS)
    legal = service(groups=["legal"])
    assert may_use_service("lawyer@acme.com", legal, SETTINGS)
    assert not may_use_service("clerk@acme.com", legal, SETTINGS)
    by_domain = service(domains=["partner.io"])
    assert may_use_service("p@partner.io", by_domain, SETTINGS)
    assert not may_use_service("p@partner.io.evil.io", by_domain, SETTINGS)
    retired = ServiceDefinition.model_validate(service().model_dump() | {"active": False})
    assert not may_use_service("anyone@acme.com", retired, SETTINGS)


def test_request_visibility_own_and_organisation():
    mine = {"requester_email": "anna@acme.com"}
    colleague = {"requester_email": "bob@acme.com"}
    outsider = {"requester_email": "eve@other.com"}
    tagged = {"requester_email": "eve@other.com", "organisation": "acme"}
    assert may_see_request("anna@acme.com", mine, SETTINGS)
    assert may_see_request("anna@acme.com", colleague, SETTINGS)  # same organisation
    assert may_see_request("anna@acme.com", tagged, SETTINGS)
    assert not may_see_request("anna@acme.com", outsider, SETTINGS)
    assert not may_see_request("solo@gmail.com", mine, SETTINGS)  # in no organisation
    assert requests_filter("solo@gmail.com", SETTINGS) == {"requester_email": "solo@gmail.com"}
    org = requests_filter("anna@acme.com", SETTINGS)
    assert {"requester_domain": {"$in": ["acme.com"]}} in org["$or"]


def test_language_choice():
    assert choose_language(None, None) == "en"
    assert choose_language(None, "ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert choose_language(None, "de-DE,en;q=0.5,ru;q=0.4") == "en"
    assert choose_language(None, "de, ru;q=0.3") == "ru"
    assert choose_language("en", "ru") == "en"  # the switcher's cookie wins
    assert choose_language("fr", "ru") == "ru"


def test_every_text_exists_in_both_languages():
    for key, (en, ru) in TEXT.items():
        assert en and ru, key
        assert en.count("{") == ru.count("{"), key
    assert translate("req.rated", "ru", score=4) == "Вы оценили обращение на 4 из 5. Спасибо!"
    assert field_error("is required", "ru") == "обязательное поле"
    assert field_error("must be one of: a, b", "ru") == "должно быть одним из: a, b"


def test_codes_are_six_digits_and_bound_to_the_attempt():
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    assert clean_code(" 123 456 ") == "123456" and clean_code("12345") is None
    assert clean_code("12345a") is None
    secret = b"s"
    assert code_hash("a1", "123456", secret) != code_hash("a2", "123456", secret)
    assert code_hash("a1", "123456", secret) != code_hash("a1", "123456", b"other")


def test_only_local_paths_are_followed():
    assert local_path("/requests/1?x=2") == "/requests/1?x=2"
    for bad in ("//evil.io", "https://evil.io/", "/\\evil.io", "javascript:alert(1)", "evil", ""):
        assert local_path(bad) == "/", bad
