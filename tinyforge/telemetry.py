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

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

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


def grpc_server_interceptor(
    tracer_provider: trace.TracerProvider | None = None,
) -> grpc.ServerInterceptor:
    """Server interceptor that opens a SERVER span per call, continuing the caller's trace."""
    from opentelemetry.instrumentation.grpc import server_interceptor

    return server_interceptor(tracer_provider=tracer_provider)


def instrument_channel(
    channel: grpc.Channel, tracer_provider: trace.TracerProvider | None = None
) -> grpc.Channel:
    """Wrap ``channel`` so every call opens a CLIENT span and sends the trace context."""
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor(tracer_provider=tracer_provider))
