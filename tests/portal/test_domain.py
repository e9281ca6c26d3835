"""The portal's pure rules: access matching, visibility filters, languages, codes, redirects."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from portal.api.web import choose_language, local_path
from portal.domain.access import (
    AccessConfig,
    may_see_request,
    may_sign_in,
    may_use_service,
    normalise_email,
    requests_filters,
)
from portal.domain.i18n import TEXT, field_error, translate
from portal.domain.login import clean_code, code_hash, new_code
from portal.settings import AddressRule, PortalSettings

SETTINGS = PortalSettings(
    env="development",
    access=AddressRule(domains=["acme.com", "*.partner.io"], addresses=["solo@gmail.com"]),
    groups={"legal": AddressRule(addresses=["lawyer@acme.com"])},
    organisations={"acme": AddressRule(domains=["acme.com"])},
)
ACCESS = AccessConfig.seed(SETTINGS)  # what the first start stores from these settings


def service(**access) -> ServiceDefinition:
    return ServiceDefinition.model_validate({
        "id": "s", "name": {"en": "S"}, "access": access,
        "target": {"board_id": "b", "column_id": "c", "lane_id": "l"}})


def test_sign_in_matches_exact_domains_only():
    assert may_sign_in("anna@acme.com", ACCESS)
    assert may_sign_in("Anna@ACME.com", ACCESS)
    assert may_sign_in("x@it.partner.io", ACCESS)
    assert may_sign_in("solo@gmail.com", ACCESS)
    for evil in ("m@acme.com.evil.io", "m@evil-acme.com", "m@evilacme.com", "m@partner.io.evil",
                 "other@gmail.com", "m@acme.com@evil.io", "m@acme.com x@evil.io"):
        assert not may_sign_in(evil, ACCESS), evil


def test_normalise_email_refuses_what_is_not_one_address():
    assert normalise_email("  Anna@Acme.COM ") == "anna@acme.com"
    for bad in ("", "anna", "a@b", "a b@acme.com", "a@acme.com, b@acme.com", "x" * 250 + "@a.co"):
        assert normalise_email(bad) is None, bad


def test_service_access_by_domain_address_and_group():
    assert may_use_service("anyone@acme.com", service(), ACCESS)
    legal = service(groups=["legal"])
    assert may_use_service("lawyer@acme.com", legal, ACCESS)
    assert not may_use_service("clerk@acme.com", legal, ACCESS)
    by_domain = service(domains=["partner.io"])
    assert may_use_service("p@partner.io", by_domain, ACCESS)
    assert not may_use_service("p@partner.io.evil.io", by_domain, ACCESS)
    retired = ServiceDefinition.model_validate(service().model_dump() | {"active": False})
    assert not may_use_service("anyone@acme.com", retired, ACCESS)


def test_request_visibility_own_and_organisation():
    mine = {"requester_email": "anna@acme.com"}
    colleague = {"requester_email": "bob@acme.com"}
    outsider = {"requester_email": "eve@other.com"}
    tagged = {"requester_email": "eve@other.com", "organisation": "acme"}
    assert may_see_request("anna@acme.com", mine, ACCESS)
    assert may_see_request("anna@acme.com", colleague, ACCESS)  # same organisation
    assert may_see_request("anna@acme.com", tagged, ACCESS)
    assert not may_see_request("anna@acme.com", outsider, ACCESS)
    assert not may_see_request("solo@gmail.com", mine, ACCESS)  # in no organisation
    assert requests_filters("solo@gmail.com", ACCESS) == [{"requester_email": "solo@gmail.com"}]
    org = requests_filters("anna@acme.com", ACCESS)
    assert {"requester_domain": {"$in": ["acme.com"]}} in org


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


def test_settings_refuse_production_without_a_public_url():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="PORTAL_PUBLIC_URL is required in production"):
        PortalSettings(env="production", public_url="")
    assert PortalSettings(env="production", public_url="https://desk.example/").public_base() \
        == "https://desk.example"
    # a laptop without one still never uses a request's Host: its own configured address
    assert PortalSettings(env="development", http_port=8123).public_base() == \
        "http://127.0.0.1:8123"


def test_forwarded_for_counts_only_from_trusted_proxies():
    from portal.domain.proxies import client_address, networks

    proxies = networks(["10.0.0.0/8", "127.0.0.1"])
    # straight from the internet: whatever the client wrote is ignored
    assert client_address("203.0.113.7", "1.2.3.4", proxies) == "203.0.113.7"
    # through our proxy: the address it saw; what the client prepended proves nothing
    assert client_address("10.1.2.3", "1.2.3.4, 198.51.100.9", proxies) == "198.51.100.9"
    assert client_address("127.0.0.1", "198.51.100.9, 10.9.9.9", proxies) == "198.51.100.9"
    assert client_address("10.1.2.3", None, proxies) == "10.1.2.3"
    assert client_address("127.0.0.1", "5.6.7.8", networks([])) == "127.0.0.1"
