"""The web-form API: per-field 422s, idempotent retries, unknown services."""

from __future__ import annotations

import uuid

import httpx

from tests.intake.helpers import request_number


def post(desk, body: dict, **headers) -> httpx.Response:
    return httpx.post(f"{desk['intake'].url}/v1/requests", json=body, headers=headers,
                      timeout=10)


BASE = {"service": "legal-document", "requester": {"email": "lea@acme.example", "name": "Lea"},
        "subject": "NDA for Contoso", "text": "Please prepare an NDA."}


def test_field_errors_name_each_field(desk):
    r = post(desk, {**BASE, "fields": {"document": "nda", "colour": "red"}})
    assert r.status_code == 422
    assert r.json()["details"]["fields"] == {"counterparty": "is required",
                                             "colour": "is not a field of this service"}
    r = post(desk, {**BASE, "fields": {"document": "will"}})
    assert r.json()["details"]["fields"]["document"].startswith("must be one of")
    # the conditional field does not apply to a power of attorney: no error for it
    assert post(desk, {**BASE, "fields": {"document": "power-of-attorney"}}).status_code == 202


def test_malformed_body_gets_per_field_messages_too(desk):
    r = post(desk, {**BASE, "requester": {"email": "not-an-address"}, "subject": ""})
    assert r.status_code == 422
    fields = r.json()["details"]["fields"]
    assert "requester.email" in fields and "subject" in fields


def test_idempotency_key_makes_a_retry_one_request(desk):
    key = str(uuid.uuid4())
    body = {**BASE, "fields": {"document": "contract", "counterparty": "Contoso"}}
    first = post(desk, body, **{"Idempotency-Key": key})
    again = post(desk, body, **{"Idempotency-Key": key})
    # the retry gets the first call's answer (marked as a replay)
    assert first.status_code == 202 and again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert request_number(desk, first.json()["request_id"]).startswith("SD-")


def test_unknown_service_is_404(desk):
    r = post(desk, {**BASE, "service": "no-such-service"})
    assert r.status_code == 404 and "no-such-service" in r.json()["message"]


def test_a_requester_name_with_a_line_break_is_refused_at_the_door(desk):
    """It would end up in notify's To header (header injection, or a send that fails on
    every retry): the web form says which field is wrong instead."""
    for name in ("Lea\r\nBcc: everyone@acme.example", "Lea\nX", "Lea\x00"):
        r = post(desk, {**BASE, "requester": {"email": "lea@acme.example", "name": name},
                        "fields": {"document": "power-of-attorney"}})
        assert r.status_code == 422, (name, r.text)
        assert "control characters" in r.json()["details"]["fields"]["requester.name"]


def test_request_status_names_a_card_so_it_needs_the_admin_token(desk):
    sent = post(desk, {**BASE, "fields": {"document": "power-of-attorney"}}).json()
    number = request_number(desk, sent["request_id"])  # with the admin token
    assert number.startswith("SD-")
    url = f"{desk['intake'].url}/v1/requests/{sent['request_id']}"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer guess"}, timeout=10
                     ).status_code == 401
    assert number not in httpx.get(url, timeout=10).text
