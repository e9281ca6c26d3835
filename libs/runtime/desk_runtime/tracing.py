"""OpenTelemetry traces across HTTP → outbox → bus → consumer (off unless configured).

A request's trace is carried through the one place where the in-process context breaks,
the outbox: `trace_carrier()` is stored with each outbox entry (W3C `traceparent`), and
the relay publishes the entry with that context attached, so the publish is a child of
the request (or consumer) that wrote it. FastStream's telemetry middleware does the rest:
it puts `traceparent` in the AMQP headers on publish and continues the trace on consume.
Every span carries the correlation id as `desk.correlation_id`; bus spans also the event's
`desk.event_type` and `desk.event_id`.

Off by default: with no endpoint (and no provider handed in) nothing is instrumented —
no middleware, no HTTP instrumentation, no exporter; what is left is reading a context
variable per emitted event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from fastapi import FastAPI
    from faststream.message import StreamMessage
    from faststream.rabbit.response import RabbitPublishCommand

    from desk_runtime.settings import ServiceSettings

CORRELATION_ATTRIBUTE = "desk.correlation_id"
EVENT_TYPE_ATTRIBUTE = "desk.event_type"
EVENT_ID_ATTRIBUTE = "desk.event_id"
# scraped every few seconds: their spans would drown the ones that matter
UNTRACED_URLS = "/healthz,/readyz,/metrics"

_PROPAGATOR = TraceContextTextMapPropagator()


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (empty when no span is being recorded)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> Context | None:
    """The context a stored carrier describes (None when there is none)."""
    if not carrier:
        return None
    return _PROPAGATOR.extract(dict(carrier))


def current_context() -> Context | None:
    """The current context if it holds a span worth continuing, else None."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    return otel_context.get_current()


@contextlib.contextmanager
def attached(ctx: Context | None) -> Iterator[None]:
    """Run the body under `ctx` (e.g. the relay publishing an outbox entry)."""
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def tag_correlation(correlation_id: str | None) -> None:
    """Put the correlation id on the current span (the HTTP server span)."""
    if correlation_id:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(CORRELATION_ATTRIBUTE, correlation_id)


def _event_attributes(headers: Mapping[str, Any] | None, message_id: str | None,
                      message_type: str | None) -> dict[str, str]:
    from desk_runtime.bus import CORRELATION_HEADER

    attrs: dict[str, str] = {}
    correlation_id = (headers or {}).get(CORRELATION_HEADER)
    if correlation_id:
        attrs[CORRELATION_ATTRIBUTE] = str(correlation_id)
    if message_id:
        attrs[EVENT_ID_ATTRIBUTE] = str(message_id)
    if message_type:  # the routing key `<type>.v<version>`
        attrs[EVENT_TYPE_ATTRIBUTE] = str(message_type).rsplit(".v", 1)[0]
    return attrs


def telemetry_middleware(provider: trace.TracerProvider):
    """FastStream's RabbitMQ telemetry middleware whose spans also carry our attributes."""
    from faststream.opentelemetry.middleware import TelemetryMiddleware
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
    from faststream.rabbit.opentelemetry.provider import RabbitTelemetrySettingsProvider
    from opentelemetry.metrics import NoOpMeterProvider

    class DeskTelemetrySettings(RabbitTelemetrySettingsProvider):
        def get_consume_attrs_from_message(self, msg: StreamMessage) -> dict[str, Any]:
            attrs = super().get_consume_attrs_from_message(msg)
            attrs.update(_event_attributes(msg.headers, msg.message_id,
                                           getattr(msg.raw_message, "type", None)))
            return attrs

        def get_publish_attrs_from_cmd(self, cmd: RabbitPublishCommand) -> dict[str, Any]:
            attrs = super().get_publish_attrs_from_cmd(cmd)
            options = cmd.message_options
            attrs.update(_event_attributes(cmd.headers, options.get("message_id"),
                                           options.get("message_type")))
            return attrs

    class DeskTelemetryMiddleware(RabbitTelemetryMiddleware):
        def __init__(self, tracer_provider: trace.TracerProvider) -> None:
            # metrics stay Prometheus's job (desk_runtime.metrics, FastStream's own)
            TelemetryMiddleware.__init__(
                self, settings_provider_factory=lambda _: DeskTelemetrySettings(),
                tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider())

    return DeskTelemetryMiddleware(provider)


def otlp_traces_endpoint(settings: ServiceSettings) -> str | None:
    """Where spans go: the service's `otel_endpoint` (an OTLP/HTTP base URL, or a full
    `.../v1/traces` URL), else the standard OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (read by
    the exporter itself: returns ""); None when tracing is off."""
    endpoint = getattr(settings, "otel_endpoint", "") or ""
    if endpoint:
        endpoint = endpoint.rstrip("/")
        return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ""
    return None


class Tracing:
    """One service's tracing: a tracer provider (or none: off) and what it instruments.

    `provider` is for tests and embedders: OpenTelemetry's global provider can be set only
    once per process, so nothing here reads or sets it.
    """

    def __init__(self, service: str, settings: ServiceSettings,
                 provider: trace.TracerProvider | None = None):
        self.service = service
        self._owned = False
        if provider is None:
            endpoint = otlp_traces_endpoint(settings)
            if endpoint is not None:
                provider = self._exporting_provider(endpoint)
                self._owned = True
        self.provider = provider

    def _exporting_provider(self, endpoint: str) -> trace.TracerProvider:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create(
            {"service.name": f"desk-{self.service}"}))
        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return provider

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def broker_middlewares(self) -> tuple:
        return (telemetry_middleware(self.provider),) if self.provider is not None else ()

    def instrument(self, app: FastAPI) -> None:
        """HTTP server spans for `app` (continuing a caller's `traceparent`)."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, meter_provider=NoOpMeterProvider(),
            excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"])

    async def shutdown(self) -> None:
        """Export what is buffered (only a provider this service made); the exporter
        blocks, so off the event loop."""
        if self._owned and self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)  # type: ignore[attr-defined]
