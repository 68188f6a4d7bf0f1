"""OpenTelemetry setup shared by services, the SDK and workflow steps.

Configured from the standard ``OTEL_*`` variables:
- ``OTEL_SDK_DISABLED=true``: nothing is set up.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``: spans are batched to
  that OTLP (gRPC) collector; ``OTEL_TRACES_EXPORTER=console`` prints them instead.
- otherwise tracing still runs (trace ids propagate across calls and into jobs) but no span
  leaves the process.
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the process in the traces.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace.status import Status, StatusCode

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: TracerProvider | None = None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def configure_telemetry(service_name: str = "tinyforge") -> TracerProvider | None:
    """Install the process-wide tracer provider (once) as the ``OTEL_*`` variables ask.

    Returns the provider, or None when ``OTEL_SDK_DISABLED`` is set. Calling it again returns
    the provider of the first call.
    """
    global _configured
    if _truthy("OTEL_SDK_DISABLED"):
        return None
    with _lock:
        if _configured is not None:
            return _configured
        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}
        )
        provider = TracerProvider(resource=resource)
        exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if exporter_name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter_name == "otlp" and endpoint:
            # The exporter reads the endpoint, headers, TLS and timeout from OTEL_* itself.
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            log.info("exporting traces over OTLP to %s", endpoint)
        trace.set_tracer_provider(provider)
        _configured = provider
        return provider


def shutdown_telemetry() -> None:
    """Flush and stop the exporter installed by :func:`configure_telemetry`, if any."""
    if _configured is not None:
        _configured.shutdown()


class ServerSpans:
    """Opens the SERVER span of each gRPC call a server handles.

    What OpenTelemetry's gRPC server instrumentation records (span named after the full
    method, ``rpc.system/service/method``, ``rpc.grpc.status_code``, ERROR status for failed
    calls, the caller's trace continued from its ``traceparent`` metadata), at a fraction of
    its cost: that interceptor wraps every handler once more, parses the peer address and
    copies the metadata twice per call, about 0.3 ms of a 2 ms upload on 2 cores
    (bench/ingest). The platform's one server interceptor
    (``services.common.auth.AuthInterceptor``) calls :meth:`start` and :meth:`finish`.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("tinyforge.grpc.server")

    def start(self, method: str, metadata: Any) -> tuple[trace.Span, object]:
        """Start the span of ``method`` ("/pkg.Service/Method") as the current span, as a
        child of the trace in ``metadata`` (the call's invocation metadata) if any; returns
        (span, token for :meth:`finish`)."""
        carrier = {m[0]: m[1] for m in metadata or () if isinstance(m[1], str)}
        parent = propagate.extract(carrier) if "traceparent" in carrier else None
        service, _, name = method.lstrip("/").partition("/")
        span = self._tracer.start_span(
            method, context=parent, kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def finish(span: trace.Span, token: object, code: grpc.StatusCode,
               notes: Sequence[str] = ()) -> None:
        """End the span with the call's final status code (and, for a failed call, its
        ``notes`` as the status description); restore the previous context."""
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            detail = "; ".join(notes)
            span.set_status(Status(StatusCode.ERROR, f"{code.name}: {detail}"[:512]))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


def instrument_channel(
    channel: grpc.Channel, tracer_provider: trace.TracerProvider | None = None
) -> grpc.Channel:
    """Wrap ``channel`` so every call opens a CLIENT span and sends the trace context."""
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor(tracer_provider=tracer_provider))
