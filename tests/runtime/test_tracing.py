"""Traces on a real broker and store: one HTTP request's spans form one trace across the
outbox, the bus and a second service; with no endpoint configured nothing is traced."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aio_pika
import httpx
import pytest
from fastapi import Request
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from desk_contracts.events import NotificationSent, Person, RequestReceived
from desk_contracts.topology import Topology
from desk_runtime.bus import delete_topology
from desk_runtime.http import create_service_app
from desk_runtime.outbox import COLLECTION
from desk_runtime.service import ServiceRuntime
from desk_runtime.settings import ServiceSettings
from desk_runtime.tracing import (
    CORRELATION_ATTRIBUTE,
    EVENT_ID_ATTRIBUTE,
    EVENT_TYPE_ATTRIBUTE,
    Tracing,
    otlp_traces_endpoint,
)

WAIT = 30.0  # how long we wait for something that normally takes milliseconds


def request() -> RequestReceived:
    return RequestReceived(request_id=f"r-{uuid.uuid4()}", channel="api", service_id="question",
                           requester=Person(email="u@acme.example"), subject="S", text="T",
                           received_at=datetime.now(UTC))


def provider(service: str, exporter: InMemorySpanExporter) -> TracerProvider:
    """What a service with an endpoint gets, exporting in-process instead of by OTLP."""
    p = TracerProvider(resource=Resource.create({"service.name": f"desk-{service}"}))
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


@pytest.fixture
async def env(amqp_url, mongo_url, monkeypatch):
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    ns = f"t{uuid.uuid4().hex[:10]}"
    made: list[ServiceRuntime] = []

    def runtime(name: str, *, tracer_provider=None, **kw) -> ServiceRuntime:
        settings = ServiceSettings(amqp_url=amqp_url, mongo_url=mongo_url, bus_namespace=ns,
                                   mongo_db=f"{ns}_{name}_{len(made)}", log_json=False,
                                   outbox_poll_seconds=0.1, **kw)
        rt = ServiceRuntime(name, settings, tracer_provider=tracer_provider)
        made.append(rt)
        return rt

    yield ns, runtime
    for rt in made:
        if rt.bus.ready:
            await rt.stop()
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        await delete_topology(await conn.channel(), Topology(ns))
    from pymongo import AsyncMongoClient
    client = AsyncMongoClient(mongo_url)
    for name in await client.list_database_names():
        if name.startswith(ns):
            await client.drop_database(name)
    await client.close()


def intake_app(rt: ServiceRuntime):
    """A service app whose one command emits `request.received` through the outbox."""
    app = create_service_app(rt, title=rt.name)

    @app.post("/requests")
    async def accept(http: Request) -> dict:
        envelope = await rt.transact(lambda uow: uow.emit(request()),
                                     correlation_id=http.state.correlation_id)
        return {"event_id": str(envelope.event_id)}

    return app


async def post(app, correlation_id: str) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") as client:
        response = await client.post("/requests", headers={"x-correlation-id": correlation_id})
    assert response.status_code == 200, response.text
    return response.json()["event_id"]


async def tap(amqp_url: str, ns: str, key: str):
    conn = await aio_pika.connect(amqp_url)
    ch = await conn.channel()
    ex = await ch.declare_exchange(Topology(ns).exchange, "topic", durable=True)
    q = await ch.declare_queue(f"{ns}.test.tap.{key}", auto_delete=True)
    await q.bind(ex, key)
    return conn, q


async def next_message(q) -> aio_pika.abc.AbstractIncomingMessage:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        m = await q.get(no_ack=True, fail=False)
        if m is not None:
            return m
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived on {q.name}")


def span(spans: list[ReadableSpan], service: str, suffix: str) -> ReadableSpan | None:
    found = [s for s in spans if s.resource.attributes["service.name"] == f"desk-{service}"
             and s.name.endswith(suffix)]
    assert len(found) <= 1, found
    return found[0] if found else None


async def spans_when(exporter: InMemorySpanExporter, *wanted: tuple[str, str]
                     ) -> list[ReadableSpan]:
    """The finished spans, once each (service, name suffix) in `wanted` has ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        spans = list(exporter.get_finished_spans())
        if all(span(spans, *w) for w in wanted) or loop.time() > deadline:
            return spans
        await asyncio.sleep(0.05)


def parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return (child.parent is not None and child.parent.span_id == parent.context.span_id
            and child.context.trace_id == parent.context.trace_id)


async def test_one_request_is_one_trace_across_outbox_bus_and_a_second_service(env, amqp_url):
    ns, runtime = env
    exporter = InMemorySpanExporter()
    intake = runtime("intake", tracer_provider=provider("intake", exporter))
    boards = runtime("boards", tracer_provider=provider("boards", exporter))

    @boards.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        await uow.emit(NotificationSent(notification_id=f"n-{uuid.uuid4()}",
                                        cause_event_id=event.request_id, channel="email",
                                        recipient="u@acme.example", kind="acknowledgment"))

    app = intake_app(intake)
    await intake.start()
    await boards.start()
    conn, q = await tap(amqp_url, ns, "notification.sent.v1")
    async with conn:
        correlation_id = f"c-{uuid.uuid4()}"
        event_id = await post(app, correlation_id)
        consequence = await next_message(q)

    spans = await spans_when(
        exporter, ("intake", "POST /requests"), ("intake", "request.received.v1 create"),
        ("intake", "request.received.v1 publish"), ("boards", "request.received.v1 process"),
        ("boards", "notification.sent.v1 create"), ("boards", "notification.sent.v1 publish"))
    server = span(spans, "intake", "POST /requests")
    a_create = span(spans, "intake", "request.received.v1 create")
    a_publish = span(spans, "intake", "request.received.v1 publish")
    b_process = span(spans, "boards", "request.received.v1 process")
    b_create = span(spans, "boards", "notification.sent.v1 create")
    b_publish = span(spans, "boards", "notification.sent.v1 publish")
    assert None not in (server, a_create, a_publish, b_process, b_create, b_publish), \
        [(s.resource.attributes["service.name"], s.name) for s in spans]

    assert server.kind is trace.SpanKind.SERVER and server.parent is None
    # the relay published later, from its own task: the outbox carried the request's context
    assert parent_of(a_create, server)
    assert parent_of(a_publish, a_create)
    # FastStream puts the message's create span in `traceparent`; the consumer continues it
    assert b_process.kind is trace.SpanKind.CONSUMER and parent_of(b_process, a_create)
    # what the handler emitted went through boards' outbox under the consume span
    assert parent_of(b_create, b_process)
    assert parent_of(b_publish, b_create)
    assert consequence.headers["traceparent"].split("-")[1] == \
        format(server.context.trace_id, "032x")

    # one trace, every span of it with the correlation id
    assert {s.context.trace_id for s in spans} == {server.context.trace_id}
    assert {s.attributes.get(CORRELATION_ATTRIBUTE) for s in spans} == {correlation_id}
    for s in (a_create, a_publish, b_process):
        assert s.attributes[EVENT_TYPE_ATTRIBUTE] == "request.received"
        assert s.attributes[EVENT_ID_ATTRIBUTE] == event_id
    assert b_publish.attributes[EVENT_TYPE_ATTRIBUTE] == "notification.sent"


async def test_an_entry_published_by_the_fallback_relay_continues_the_request_trace(
        env, amqp_url):
    """Another process (or a later round) publishes the entry: the context is in the store."""
    ns, runtime = env
    exporter = InMemorySpanExporter()
    intake = runtime("intake", tracer_provider=provider("intake", exporter),
                     outbox_relay=False)
    app = intake_app(intake)
    await intake.start()
    conn, q = await tap(amqp_url, ns, "request.received.v1")
    async with conn:
        event_id = await post(app, "c-fallback")
        entry = await intake.db[COLLECTION].find_one({"_id": event_id})
        server = span(list(exporter.get_finished_spans()), "intake", "POST /requests")
        assert entry["trace"]["traceparent"].split("-")[1:3] == [
            format(server.context.trace_id, "032x"), format(server.context.span_id, "016x")]

        # the committer died before publishing: its lease ran out, a relay takes the entry
        await intake.db[COLLECTION].update_one(
            {"_id": event_id}, {"$set": {"claimed_until": datetime.now(UTC) - timedelta(1)}})
        assert await intake.relay.relay_once() == 1
        message = await next_message(q)

    spans = await spans_when(exporter, ("intake", "request.received.v1 publish"))
    create = span(spans, "intake", "request.received.v1 create")
    assert parent_of(create, server)
    assert parent_of(span(spans, "intake", "request.received.v1 publish"), create)
    assert message.headers["traceparent"].split("-")[1] == format(server.context.trace_id, "032x")
    assert create.attributes[CORRELATION_ATTRIBUTE] == "c-fallback"


async def test_with_no_endpoint_nothing_is_traced(env, amqp_url):
    ns, runtime = env
    intake = runtime("intake")
    boards = runtime("boards")
    assert not intake.tracing.enabled and not boards.tracing.enabled
    assert not any("Telemetry" in type(m).__name__ for m in boards.bus.broker.middlewares)
    recording: list[bool] = []

    @boards.on("requests", "request.received")
    async def handle(uow, event: RequestReceived) -> None:
        recording.append(trace.get_current_span().get_span_context().is_valid)

    app = intake_app(intake)

    @app.get("/span")
    async def current_span() -> dict:
        return {"valid": trace.get_current_span().get_span_context().is_valid}

    await intake.start()
    await boards.start()
    conn, q = await tap(amqp_url, ns, "request.received.v1")
    async with conn:
        event_id = await post(app, "c-off")
        message = await next_message(q)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") as client:
        assert (await client.get("/span")).json() == {"valid": False}

    assert "traceparent" not in (message.headers or {})
    assert "trace" not in await intake.db[COLLECTION].find_one({"_id": event_id})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not recording and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert recording == [False]
    # nothing was installed process-wide either
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps what is posted to /v1/traces."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


async def test_with_an_endpoint_spans_are_exported_by_otlp(monkeypatch):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert otlp_traces_endpoint(ServiceSettings()) is None
    assert otlp_traces_endpoint(ServiceSettings(otel_endpoint="http://c:4318/")) == \
        "http://c:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")
    assert otlp_traces_endpoint(ServiceSettings()) == ""  # the exporter reads the variable
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")

    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        tracing = Tracing("sla", ServiceSettings(
            otel_endpoint=f"http://127.0.0.1:{server.server_address[1]}"))
        assert tracing.enabled
        with tracing.provider.get_tracer("test").start_as_current_span("work"):
            pass
        await tracing.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        thread.join()

    assert [path for path, _ in _Collector.received] == ["/v1/traces"]
    export = ExportTraceServiceRequest.FromString(_Collector.received[0][1])
    [resource_spans] = export.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "desk-sla"
    assert [s.name for ss in resource_spans.scope_spans for s in ss.spans] == ["work"]
