"""The service desk's shared language: events, their envelope, the bus topology and the catalog."""

from desk_contracts.envelope import Envelope, make_envelope
from desk_contracts.events import EVENTS, EventPayload, event_class, parse_payload

__all__ = ["EVENTS", "Envelope", "EventPayload", "event_class", "make_envelope", "parse_payload"]
