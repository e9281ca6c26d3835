"""Every event a queue is bound to has a handler in the service that owns the queue.

A binding nobody handles still costs a delivery, a decode and an ack for every such event
(the consumer acks it as `ignored`); a handler with no binding never runs. Both are bugs.
"""

from __future__ import annotations

import importlib

import pytest

from desk_contracts.topology import QUEUES

SERVICES = ("intake", "boards", "sla", "notify", "portal")


@pytest.mark.parametrize("service", SERVICES)
def test_queue_bindings_and_handlers_match(service, monkeypatch):
    monkeypatch.setenv("MONGO_URL", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1")
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://desk.example/")
    app = importlib.import_module(f"{service}.main").create_app()
    handlers = app.state.runtime._handlers
    for spec in (q for q in QUEUES if q.service == service):
        bound = {key.rsplit(".v", 1)[0] for key in spec.bindings}
        handled = set(handlers.get(spec.purpose, {}))
        assert bound - handled == set(), f"{spec.name}: bound but not handled"
        assert handled - bound == set(), f"{spec.name}: handled but not bound"
    assert set(handlers) <= {q.purpose for q in QUEUES if q.service == service}
