"""Envelope and event contracts: frozen, versioned, strict where it protects customers."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from desk_contracts import Envelope, make_envelope, parse_payload
from desk_contracts.events import (
    EVENTS,
    Author,
    CommentAdded,
    Person,
    RequestReceived,
    UnknownEvent,
    event_class,
)


def request(**kw) -> RequestReceived:
    base = dict(request_id="r1", channel="api", service_id="question",
                requester=Person(email="a@acme.example"), subject="S", text="T",
                received_at=datetime.now(UTC))
    return RequestReceived(**(base | kw))


def test_envelope_round_trips_and_names_its_routing_key():
    env = make_envelope(request(), account_id="acme")
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again == env
    assert env.routing_key == "request.received.v1"
    assert env.correlation_id == str(env.event_id)  # a first event starts its own chain
    assert isinstance(parse_payload(again), RequestReceived)


def test_caused_event_inherits_correlation_and_names_its_cause():
    cause = make_envelope(request(), account_id="acme", correlation_id="corr-1")
    effect = make_envelope(request(request_id="r2"), account_id="acme", causation=cause)
    assert effect.correlation_id == "corr-1"
    assert effect.causation_id == str(cause.event_id)


def test_envelope_is_frozen_and_utc():
    env = make_envelope(request(), account_id="acme",
                        occurred_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=3))))
    assert env.occurred_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(ValidationError):
        env.type = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Envelope(event_id=uuid.uuid4(), type="x", version=1, occurred_at=datetime(2026, 1, 1),
                 account_id="a", correlation_id="c", payload={})


def test_unknown_fields_and_versions_are_refused():
    with pytest.raises(ValidationError):
        RequestReceived.model_validate(request().model_dump() | {"surprise": 1})
    with pytest.raises(UnknownEvent):
        event_class("request.received", 99)


def test_internal_note_cannot_carry_its_text_onto_the_bus():
    common = dict(comment_id="c", card_id="k", number="SD-1", author=Author(kind="agent"),
                  created_at=datetime.now(UTC))
    with pytest.raises(ValidationError):
        CommentAdded(visibility="internal", text="the customer is difficult", **common)
    note = CommentAdded(visibility="internal", **common)
    assert note.text is None
    with pytest.raises(ValidationError):
        CommentAdded(visibility="public", **common)


def test_requester_must_be_reachable():
    with pytest.raises(ValidationError):
        Person(name="nobody")
    assert Person(telegram_chat_id=42).telegram_chat_id == 42


def test_every_event_is_frozen_and_named_in_the_past_tense_with_dots():
    for (type_, version), cls in EVENTS.items():
        assert cls.model_config.get("frozen") is True, type_
        assert "." in type_ and version >= 1
