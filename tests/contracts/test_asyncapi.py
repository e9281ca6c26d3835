"""The committed AsyncAPI document is what the code generates: integrators can trust it."""

from pathlib import Path

import yaml

from desk_contracts.asyncapi import build_document, render
from desk_contracts.events import EVENTS
from desk_contracts.topology import QUEUES

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_code():
    assert DOC.read_text() == render(), (
        "docs/asyncapi.yaml is out of date: run `make asyncapi` and commit it"
    )


def test_every_event_has_a_channel_and_every_binding_an_operation():
    doc = yaml.safe_load(DOC.read_text())
    assert set(doc["channels"]) == {f"{t}.v{v}" for t, v in EVENTS}
    bound = {(q.name, key) for q in QUEUES for key in q.bindings}
    ops = {(op["bindings"]["amqp"]["queue"]["name"], op["channel"]["$ref"].split("/")[-1])
           for op in doc["operations"].values()}
    assert ops == bound


def test_every_queue_binding_names_a_known_event():
    known = {f"{t}.v{v}" for t, v in EVENTS}
    for q in QUEUES:
        assert set(q.bindings) <= known, q.name


def test_document_is_a_valid_shape():
    doc = build_document()
    assert doc["asyncapi"].startswith("3.")
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["allOf"][1]["properties"]["payload"]["$ref"]
        assert ref.split("/")[-1] in doc["components"]["schemas"], name
