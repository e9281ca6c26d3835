"""The committed AsyncAPI document is what FastStream generates from the code: integrators
can trust it."""

from pathlib import Path

import yaml

from desk_contracts.events import EVENTS
from desk_contracts.topology import QUEUES
from desk_runtime.asyncapi import build_document, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_code():
    assert DOC.read_text() == render(), (
        "docs/asyncapi.yaml is out of date: run `make asyncapi` and commit it"
    )


def test_every_event_has_a_publisher_channel_with_its_typed_payload():
    doc = yaml.safe_load(DOC.read_text())
    schemas = doc["components"]["schemas"]
    for (type_, version), cls in EVENTS.items():
        channel = doc["channels"][f"{type_}.v{version}"]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "desk.events"
        ref = doc["components"]["messages"][f"{type_}.v{version}:Message"]["payload"]["$ref"]
        envelope = schemas[ref.split("/")[-1]]
        # the envelope of this event: its type and version fixed, its payload the event model
        assert envelope["properties"]["type"]["const"] == type_
        assert envelope["properties"]["version"]["const"] == version
        payload_ref = envelope["properties"]["payload"]["$ref"].split("/")[-1]
        assert set(schemas[payload_ref]["properties"]) == set(cls.model_fields)


def test_every_queue_has_a_subscriber_naming_its_bindings():
    doc = build_document()
    for q in QUEUES:
        channel = doc["channels"][f"{q.name}:consume"]
        assert channel["bindings"]["amqp"]["queue"]["name"] == q.name
        for key in q.bindings:
            assert key in channel["description"], (q.name, key)
    subscribed = {op["channel"]["$ref"].split("/")[-1] for op in doc["operations"].values()
                  if op["action"] == "receive"}
    assert subscribed == {f"{q.name}:consume" for q in QUEUES}


def test_every_queue_binding_names_a_known_event():
    known = {f"{t}.v{v}" for t, v in EVENTS}
    for q in QUEUES:
        assert set(q.bindings) <= known, q.name
